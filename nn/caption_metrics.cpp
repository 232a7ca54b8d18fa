#include "nn/caption_metrics.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <unordered_map>
#include <unordered_set>

#include "autograd/error.h"

namespace tessera::nn {
namespace {

constexpr int kMaxN = 4;  // BLEU-4 and CIDEr-D both use 1..4-grams

// Counts of a sentence's n-grams, [n - 1] holding the n-grams of n words joined by spaces
// (words never hold a space, so the key is unambiguous).
using NgramCounts = std::array<std::unordered_map<std::string, int64_t>, kMaxN>;

NgramCounts count_ngrams(const std::vector<std::string>& words) {
  NgramCounts counts;
  for (size_t start = 0; start < words.size(); ++start) {
    std::string ngram;
    for (size_t n = 1; n <= kMaxN && start + n <= words.size(); ++n) {
      if (n > 1) ngram += ' ';
      ngram += words[start + n - 1];
      ++counts[n - 1][ngram];
    }
  }
  return counts;
}

// Locale-free: the metrics must not change with the user's environment.
bool is_ascii_punctuation(unsigned char c) {
  return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') || (c >= '{' && c <= '~');
}
bool is_ascii_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

void check_corpus(const char* metric, const std::vector<std::string>& candidates,
                  const std::vector<std::vector<std::string>>& references) {
  if (candidates.empty()) fail("{}: no candidates to score", metric);
  if (candidates.size() != references.size())
    fail("{}: {} candidates but {} reference lists (one list per candidate expected)", metric,
         candidates.size(), references.size());
  for (size_t i = 0; i < references.size(); ++i)
    if (references[i].empty()) fail("{}: item {} has no reference", metric, i);
}

}  // namespace

std::vector<std::string> caption_words(const std::string& caption) {
  std::vector<std::string> words;
  std::string word;
  for (unsigned char c : caption) {
    if (is_ascii_space(c) || is_ascii_punctuation(c)) {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    } else {
      word += (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : char(c);
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

// ---- BLEU-4 -------------------------------------------------------------------------------

double bleu4(const std::vector<std::string>& candidates, const std::vector<std::vector<std::string>>& references) {
  check_corpus("bleu4", candidates, references);
  std::array<double, kMaxN> correct{}, guessed{};  // summed over the corpus, per n
  double candidate_length = 0, reference_length = 0;
  for (size_t item = 0; item < candidates.size(); ++item) {
    const auto candidate = caption_words(candidates[item]);
    const auto length = int64_t(candidate.size());
    // Clipping allows each n-gram as often as the one reference that has it most.
    std::array<std::unordered_map<std::string, int64_t>, kMaxN> most_in_a_reference;
    int64_t closest = -1;
    for (const auto& reference : references[item]) {
      const auto words = caption_words(reference);
      const auto ref_length = int64_t(words.size());
      const auto gap = std::abs(ref_length - length), best_gap = std::abs(closest - length);
      if (closest < 0 || gap < best_gap || (gap == best_gap && ref_length < closest)) closest = ref_length;
      const auto counts = count_ngrams(words);
      for (int n = 0; n < kMaxN; ++n)
        for (const auto& [ngram, count] : counts[n]) {
          auto& most = most_in_a_reference[n][ngram];
          most = std::max(most, count);
        }
    }
    const auto counts = count_ngrams(candidate);
    for (int n = 0; n < kMaxN; ++n) {
      guessed[n] += double(std::max<int64_t>(0, length - n));
      for (const auto& [ngram, count] : counts[n]) {
        const auto found = most_in_a_reference[n].find(ngram);
        if (found != most_in_a_reference[n].end()) correct[n] += double(std::min(count, found->second));
      }
    }
    candidate_length += double(length);
    reference_length += double(closest);
  }
  // pycocoevalcap's smoothing constants, kept so that our numbers are COCO's to the last digits.
  constexpr double tiny = 1e-15, small = 1e-9;
  double precision_product = 1;
  for (int n = 0; n < kMaxN; ++n) precision_product *= (correct[n] + tiny) / (guessed[n] + small);
  double bleu = std::pow(precision_product, 1.0 / kMaxN);
  const double ratio = (candidate_length + tiny) / (reference_length + small);
  if (ratio < 1) bleu *= std::exp(1 - 1 / ratio);
  return bleu;
}

// ---- CIDEr-D ------------------------------------------------------------------------------

namespace {

// A sentence as CIDEr-D sees it: TF-IDF weights per n, their norms, and its length in bigrams.
struct TfIdf {
  std::array<std::unordered_map<std::string, double>, kMaxN> weight;
  std::array<double, kMaxN> norm{};
  double length = 0;
};

constexpr double kCiderSigma = 6;

class CiderD {
 public:
  explicit CiderD(const std::vector<std::vector<NgramCounts>>& references)
      : log_items_(std::log(double(references.size()))) {
    // Document frequency: in how many items' reference sets (not sentences) an n-gram occurs.
    for (const auto& item : references) {
      std::array<std::unordered_set<std::string>, kMaxN> seen;
      for (const auto& reference : item)
        for (int n = 0; n < kMaxN; ++n)
          for (const auto& entry : reference[n]) seen[n].insert(entry.first);
      for (int n = 0; n < kMaxN; ++n)
        for (const auto& ngram : seen[n]) ++document_frequency_[n][ngram];
    }
  }

  TfIdf tf_idf(const NgramCounts& counts) const {
    TfIdf vector;
    for (int n = 0; n < kMaxN; ++n) {
      for (const auto& [ngram, count] : counts[n]) {
        const auto found = document_frequency_[n].find(ngram);
        const double df = found == document_frequency_[n].end() ? 0.0 : double(found->second);
        const double weight = double(count) * (log_items_ - std::log(std::max(1.0, df)));
        vector.weight[n][ngram] = weight;
        vector.norm[n] += weight * weight;
      }
      vector.norm[n] = std::sqrt(vector.norm[n]);
    }
    // pycocoevalcap counts the bigrams as the length; we keep that for comparable numbers.
    for (const auto& entry : counts[1]) vector.length += double(entry.second);
    return vector;
  }

  // sim_n(candidate, reference) summed over n (the caller averages).
  static double similarity(const TfIdf& candidate, const TfIdf& reference) {
    const double delta = candidate.length - reference.length;
    const double length_penalty = std::exp(-(delta * delta) / (2 * kCiderSigma * kCiderSigma));
    double sum = 0;
    for (int n = 0; n < kMaxN; ++n) {
      double dot = 0;
      for (const auto& [ngram, weight] : candidate.weight[n]) {
        const auto found = reference.weight[n].find(ngram);
        if (found == reference.weight[n].end()) continue;
        // The "-D": a candidate n-gram counts no more than the reference has it, so repeating
        // a common phrase cannot buy score.
        dot += std::min(weight, found->second) * found->second;
      }
      if (candidate.norm[n] != 0 && reference.norm[n] != 0) dot /= candidate.norm[n] * reference.norm[n];
      sum += dot * length_penalty;
    }
    return sum;
  }

 private:
  double log_items_;
  std::array<std::unordered_map<std::string, int64_t>, kMaxN> document_frequency_;
};

}  // namespace

double cider_d(const std::vector<std::string>& candidates, const std::vector<std::vector<std::string>>& references) {
  check_corpus("cider_d", candidates, references);
  std::vector<std::vector<NgramCounts>> reference_counts(references.size());
  for (size_t item = 0; item < references.size(); ++item)
    for (const auto& reference : references[item]) reference_counts[item].push_back(count_ngrams(caption_words(reference)));
  const CiderD cider(reference_counts);

  double total = 0;
  for (size_t item = 0; item < candidates.size(); ++item) {
    const TfIdf candidate = cider.tf_idf(count_ngrams(caption_words(candidates[item])));
    double item_sum = 0;
    for (const auto& reference : reference_counts[item]) item_sum += CiderD::similarity(candidate, cider.tf_idf(reference));
    total += 10.0 * item_sum / kMaxN / double(reference_counts[item].size());
  }
  return total / double(candidates.size());
}

// ---- VQA ----------------------------------------------------------------------------------

std::string normalize_answer(const std::string& answer) {
  std::string normal;
  for (const auto& word : caption_words(answer)) {
    if (word == "a" || word == "an" || word == "the") continue;
    if (!normal.empty()) normal += ' ';
    normal += word;
  }
  return normal;
}

bool vqa_exact_match(const std::string& prediction, const std::string& answer) {
  return normalize_answer(prediction) == normalize_answer(answer);
}

bool VqaAccuracy::add(const std::string& prediction, const std::string& answer, const std::string& question_type) {
  const bool match = vqa_exact_match(prediction, answer);
  for (Tally* tally : {&total_, &per_type_[question_type]}) {
    ++tally->questions;
    tally->correct += match ? 1 : 0;
  }
  return match;
}

std::vector<VqaAccuracy::TypeTally> VqaAccuracy::tallies() const {
  std::vector<TypeTally> out;
  for (const auto& [type, tally] : per_type_) out.push_back({type, tally.questions, tally.correct});
  return out;
}

void VqaAccuracy::add(const TypeTally& t) {
  for (Tally* tally : {&total_, &per_type_[t.type]}) tally->questions += t.questions, tally->correct += t.correct;
}

std::map<std::string, double> VqaAccuracy::by_type() const {
  std::map<std::string, double> accuracy;
  for (const auto& [type, tally] : per_type_) accuracy[type] = tally.accuracy();
  return accuracy;
}

}  // namespace tessera::nn
