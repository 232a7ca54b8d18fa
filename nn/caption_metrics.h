#pragma once
// What a vision-language model's text is judged by, as pure functions of strings:
//   BLEU-4 and CIDEr-D of generated captions against several references per image, computed as
//   the COCO caption evaluation (pycocoevalcap's Bleu and CiderD scorers) computes them, and
//   VQA exact-match accuracy, overall and per question type.
// bench/caption_metrics_reference.py produces the reference values the tests hold us to.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace tessera::nn {

// The words of a caption: ASCII letters lower-cased, every ASCII punctuation character replaced
// by a space, then split on whitespace ("Two bags, a small sneaker." -> two|bags|a|small|sneaker).
// COCO tokenises with the PTB tokenizer (Java); on our generated captions, which have no
// contractions or quotes, the two agree. Non-ASCII bytes are kept as they are.
std::vector<std::string> caption_words(const std::string& caption);

// Corpus-level BLEU-4 of candidates[i] against references[i] (one or more each), as
// pycocoevalcap's Bleu(4) with its "closest" length rule:
//   p_n = sum_i clipped_n(i) / sum_i (len_i - n + 1)+, where a candidate n-gram counts at most as
//         often as it occurs in any single reference of its item (the max over references);
//   BP  = exp(1 - R/C) when C < R, else 1, with C the total candidate length and R the sum over
//         items of the reference length closest to the candidate's (the shorter one on a tie);
//   BLEU-4 = BP * (p_1 p_2 p_3 p_4)^(1/4).
// Like pycocoevalcap, each p_n is (clipped + 1e-15) / (total + 1e-9), so no 4-gram in common
// gives a tiny positive score (about 1e-4) rather than 0; we keep that for comparable numbers.
// Throws tessera::Error when the sizes differ or an item has no reference.
double bleu4(const std::vector<std::string>& candidates, const std::vector<std::vector<std::string>>& references);

// CIDEr-D of candidates[i] against references[i], as pycocoevalcap's CIDEr scorer (which is
// CIDEr-D: clipped, length-penalised), with sigma = 6, averaged over items:
//   for n = 1..4, an n-gram's weight in a sentence is  count * (log N - log(max(1, df))),  where
//   N is the number of items and df the number of items whose references contain the n-gram;
//   sim_n(c, r) = sum_g min(w_c(g), w_r(g)) w_r(g) / (|w_c| |w_r|) * exp(-(l_c - l_r)^2 / (2 sigma^2));
//   CIDEr-D(item) = 10 * mean_n mean_r sim_n(c, r).
// The length l is pycocoevalcap's, the number of bigrams (words - 1); a difference of two lengths
// is the same as in words unless a sentence is empty, and then the score is 0 either way.
// The corpus sets the idf, so an item's score depends on the others, and a corpus of one item
// scores 0 (log 1 = 0).
// Throws tessera::Error when the sizes differ or an item has no reference.
double cider_d(const std::vector<std::string>& candidates, const std::vector<std::vector<std::string>>& references);

// A VQA answer in canonical form: lower-cased, ASCII punctuation replaced by spaces, the articles
// a/an/the dropped, words joined by single spaces ("The Bag." -> "bag", "left-of" -> "left of").
std::string normalize_answer(const std::string& answer);

// Whether a predicted answer equals the true one after normalize_answer on both.
bool vqa_exact_match(const std::string& prediction, const std::string& answer);

// Exact-match accuracy over a set of questions, overall and per question type ("count", ...).
class VqaAccuracy {
 public:
  // Scores one question; returns whether the prediction matched.
  bool add(const std::string& prediction, const std::string& answer, const std::string& question_type);
  int64_t questions() const { return total_.questions; }
  double overall() const { return total_.accuracy(); }  // 0 before any question
  // Accuracy per question type seen so far, by type name.
  std::map<std::string, double> by_type() const;
  // The counts per question type, to add up accuracies scored in parts.
  struct TypeTally {
    std::string type;
    int64_t questions = 0, correct = 0;
  };
  std::vector<TypeTally> tallies() const;
  void add(const TypeTally& tally);

 private:
  struct Tally {
    int64_t questions = 0;
    int64_t correct = 0;
    double accuracy() const { return questions == 0 ? 0.0 : double(correct) / double(questions); }
  };
  Tally total_;
  std::map<std::string, Tally> per_type_;
};

}  // namespace tessera::nn
