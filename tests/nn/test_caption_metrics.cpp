// Text metrics of a vision-language model: BLEU-4 and CIDEr-D against hand computations and
// against pycocoevalcap's own scorers (bench/caption_metrics_reference.py), and VQA exact match.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "autograd/error.h"
#include "nn/caption_metrics.h"

using namespace tessera;
using namespace tessera::nn;

namespace {

using References = std::vector<std::vector<std::string>>;

// pycocoevalcap's smoothing of each precision, (clipped + 1e-15) / (total + 1e-9), so that hand
// computations can be held to the same tight tolerance as the reference values.
double smoothed(double clipped, double total) { return (clipped + 1e-15) / (total + 1e-9); }

double relative_error(double got, double expected) { return std::abs(got - expected) / std::abs(expected); }

// The corpus of bench/caption_metrics_reference.py, item for item.
const std::vector<std::pair<std::string, std::vector<std::string>>> kCorpus = {
    {"two bags, a small sneaker below them.",
     {"two bags, a small sneaker below them.", "a small sneaker and two bags.", "a small sneaker below a bag."}},
    {"a large shirt and two bags.",
     {"a large shirt and two bags.", "two bags, a large shirt left of them.", "a large shirt right of a bag.",
      "two bags and a shirt."}},
    {"a dress.", {"a dress.", "a small dress."}},
    {"a coat above a sandal.", {"a sandal, a coat above it.", "a coat and a sandal.", "a coat above a sandal."}},
    {"bag", {"a bag.", "a large bag."}},
    {"a bag a bag a bag a bag.", {"two bags.", "a bag and a bag.", "a small bag left of a bag."}},
    {"three sneakers, a trouser right of them.",
     {"three sneakers, a trouser right of them.", "a trouser and three sneakers.", "a trouser right of a sneaker.",
      "three sneakers and a trouser.", "a small trouser and three sneakers."}},
    {"A Pullover Left Of An Ankle Boot.", {"an ankle boot, a pullover left of it.", "a pullover and an ankle boot."}},
    {"a zebra next to a shirt.", {"a shirt.", "a small shirt."}},
    {"two dresses and a bag.", {"two dresses, a bag below them.", "a bag and two dresses.", "a bag below a dress."}},
    {"a small sandal above a large coat.",
     {"a large coat, a small sandal above it.", "a small sandal and a large coat.", "a small sandal above a large coat.",
      "a coat and a sandal."}},
    {"four shirts.", {"four shirts.", "four shirts, all of them small."}},
    {"a t-shirt/top right of a sneaker.",
     {"a sneaker, a t-shirt/top right of it.", "a t-shirt/top and a sneaker.", "a t-shirt/top right of a sneaker."}},
    {"a large bag below a small bag and a sneaker on the left of them both.",
     {"two bags and a sneaker.", "a large bag below a small bag."}},
    {"two coats, a dress left of them.",
     {"two coats, a dress left of them.", "a dress and two coats.", "a dress left of a coat.", "two coats and a dress.",
      "a large dress, two coats right of it."}},
};

// Printed by bench/caption_metrics_reference.py (pycocoevalcap 1.2: Bleu(4) with "closest", Cider).
constexpr double k_corpus_bleu4 = 0.70082774813930637;
constexpr double k_corpus_cider_d = 4.0044147673478721;
constexpr double k_first_five_bleu4 = 0.95349695471547202;
constexpr double k_first_five_cider_d = 4.4658663054962222;
constexpr double k_truncated_bleu4 = 0.53667472000386407;
constexpr double k_truncated_cider_d = 2.6043622855784729;

struct Corpus {
  std::vector<std::string> candidates;
  References references;
};

Corpus corpus(size_t items = kCorpus.size()) {
  Corpus c;
  for (size_t i = 0; i < items; ++i) {
    c.candidates.push_back(kCorpus[i].first);
    c.references.push_back(kCorpus[i].second);
  }
  return c;
}

// The script's short(): the first three space-separated words of every candidate.
Corpus truncated_corpus() {
  Corpus c = corpus();
  for (auto& candidate : c.candidates) {
    size_t end = 0;
    for (int word = 0; word < 3 && end != std::string::npos; ++word) end = candidate.find(' ', end + (word > 0));
    candidate = candidate.substr(0, end);
  }
  return c;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(caption_metrics)

BOOST_AUTO_TEST_CASE(caption_words_lower_case_and_split_on_punctuation) {
  BOOST_TEST(caption_words("Two bags, a small sneaker below them.") ==
                 (std::vector<std::string>{"two", "bags", "a", "small", "sneaker", "below", "them"}),
             boost::test_tools::per_element());
  BOOST_TEST(caption_words("a t-shirt/top\tright") == (std::vector<std::string>{"a", "t", "shirt", "top", "right"}),
             boost::test_tools::per_element());
  BOOST_TEST(caption_words(" ,. ").empty());
}

BOOST_AUTO_TEST_CASE(bleu4_of_a_perfect_match_is_one) {
  BOOST_TEST(bleu4({"two bags, a small sneaker below them."}, {{"Two bags a small sneaker below them"}}) ==
                 1.0, boost::test_tools::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(bleu4_without_a_common_4gram_is_nearly_zero) {
  // 1-, 2- and 3-grams match, no 4-gram does: only pycocoevalcap's smoothing keeps it above 0.
  const double got = bleu4({"bag below a shirt"}, {{"bag below a coat"}});
  const double ratio = (4 + 1e-15) / (4 + 1e-9);
  const double expected =
      std::pow(smoothed(3, 4) * smoothed(2, 3) * smoothed(1, 2) * smoothed(0, 1), 0.25) * std::exp(1 - 1 / ratio);
  BOOST_TEST(relative_error(got, expected) < 1e-9);
  BOOST_TEST(got < 1e-3);
}

BOOST_AUTO_TEST_CASE(bleu4_clips_repeated_ngrams_to_the_reference_counts) {
  // bag shirt x3 against bag shirt bag shirt coat: unigrams 4/6, bigrams 3/5, trigrams 2/4, 4-grams 1/3.
  const double got = bleu4({"bag shirt bag shirt bag shirt"}, {{"bag shirt bag shirt coat"}});
  const double expected = std::pow(smoothed(4, 6) * smoothed(3, 5) * smoothed(2, 4) * smoothed(1, 3), 0.25);
  BOOST_TEST(relative_error(got, expected) < 1e-9);
  BOOST_TEST(std::abs(got - std::pow(4.0 / 6 * 3.0 / 5 * 2.0 / 4 * 1.0 / 3, 0.25)) < 1e-8);
}

BOOST_AUTO_TEST_CASE(bleu4_brevity_penalty_uses_the_closest_reference_length) {
  // 4 words against 6: every n-gram matches, BP = exp(1 - 6/4).
  const double short_candidate = bleu4({"a small bag left"}, {{"a small bag left of it"}});
  BOOST_TEST(short_candidate == std::exp(-0.5), boost::test_tools::tolerance(1e-8));
  // A 2-word reference is as close (gap 2) as the 6-word one: the shorter wins, so no penalty.
  const double tie = bleu4({"a small bag left"}, {{"a small bag left of it", "small bag"}});
  BOOST_TEST(tie == 1.0, boost::test_tools::tolerance(1e-8));
  // The penalty is corpus-wide, on summed lengths: 4 + 5 words against 6 + 5 (not a mean of
  // per-item penalties, exp(-0.5) and 1).
  const double corpus_wide = bleu4({"a small bag left", "two coats and a dress"},
                                   {{"a small bag left of it"}, {"two coats and a dress"}});
  BOOST_TEST(corpus_wide == std::exp(1 - 11.0 / 9), boost::test_tools::tolerance(1e-8));
}

BOOST_AUTO_TEST_CASE(cider_d_of_a_single_item_corpus_is_zero) {
  // idf = log(items) - log(df) = log 1 - log 1: every weight is zero, as in pycocoevalcap.
  BOOST_TEST(cider_d({"a small bag"}, {{"a small bag"}}) == 0.0);
}

BOOST_AUTO_TEST_CASE(cider_d_of_identical_captions_counts_the_ngram_orders_present) {
  // Every n-gram occurs in one of the two items, so all weights are log 2 and each cosine is 1 where
  // the sentence has n-grams of that order: 10 * 3/4 for three words, 10 * 2/4 for two.
  BOOST_TEST(cider_d({"a small bag", "two coats"}, {{"a small bag"}, {"two coats"}}) == (7.5 + 5.0) / 2,
             boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(cider_d_clips_candidate_weights_to_the_reference) {
  // "bag bag" vs "bag": unigram weights 2 log 2 and log 2, clipped dot log^2 2 over norms 2 log^2 2 = 1/2
  // (1 without clipping); the bigram is absent from the reference; lengths differ by one bigram.
  const double got = cider_d({"bag bag", "coat"}, {{"bag"}, {"coat"}});
  const double expected = (10 * 0.5 * std::exp(-1.0 / 72) / 4 + 2.5) / 2;
  BOOST_TEST(got == expected, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(cider_d_penalises_length_differences) {
  // "bag" vs seven "bag"s: the unigram cosine is 1, but lengths differ by 6: exp(-36 / 72).
  const double got = cider_d({"bag", "coat"}, {{"bag bag bag bag bag bag bag"}, {"coat"}});
  BOOST_TEST(got == (2.5 * std::exp(-0.5) + 2.5) / 2, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(cider_d_averages_over_references) {
  // One reference equal to the candidate, one sharing nothing: half of the identical score.
  const double got = cider_d({"bag", "coat"}, {{"bag", "shirt"}, {"coat"}});
  BOOST_TEST(got == (2.5 / 2 + 2.5) / 2, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(metrics_match_pycocoevalcap_on_a_scene_corpus) {
  const Corpus full = corpus(), first_five = corpus(5), truncated = truncated_corpus();
  BOOST_TEST(relative_error(bleu4(full.candidates, full.references), k_corpus_bleu4) < 1e-9);
  BOOST_TEST(relative_error(cider_d(full.candidates, full.references), k_corpus_cider_d) < 1e-9);
  BOOST_TEST(relative_error(bleu4(first_five.candidates, first_five.references), k_first_five_bleu4) < 1e-9);
  BOOST_TEST(relative_error(cider_d(first_five.candidates, first_five.references), k_first_five_cider_d) < 1e-9);
  BOOST_TEST(relative_error(bleu4(truncated.candidates, truncated.references), k_truncated_bleu4) < 1e-9);
  BOOST_TEST(relative_error(cider_d(truncated.candidates, truncated.references), k_truncated_cider_d) < 1e-9);
}

BOOST_AUTO_TEST_CASE(metrics_do_not_depend_on_the_order_of_items_or_references) {
  Corpus c = corpus();
  const double bleu = bleu4(c.candidates, c.references), cider = cider_d(c.candidates, c.references);
  std::reverse(c.candidates.begin(), c.candidates.end());
  std::reverse(c.references.begin(), c.references.end());
  for (auto& references : c.references) std::rotate(references.begin(), references.begin() + 1, references.end());
  BOOST_TEST(relative_error(bleu4(c.candidates, c.references), bleu) < 1e-12);
  BOOST_TEST(relative_error(cider_d(c.candidates, c.references), cider) < 1e-12);
}

BOOST_AUTO_TEST_CASE(metrics_refuse_malformed_corpora) {
  BOOST_CHECK_THROW(bleu4({"a bag"}, {}), Error);
  BOOST_CHECK_THROW(cider_d({"a bag", "a coat"}, {{"a bag"}}), Error);
  BOOST_CHECK_THROW(bleu4({"a bag"}, {{}}), Error);
  BOOST_CHECK_THROW(cider_d({}, {}), Error);
}

BOOST_AUTO_TEST_CASE(answers_are_normalised_before_matching) {
  BOOST_TEST(normalize_answer("The Bag.") == "bag");
  BOOST_TEST(normalize_answer("  an   ANKLE boot! ") == "ankle boot");
  BOOST_TEST(normalize_answer("Theory of a thing") == "theory of thing");  // articles only as whole words
  BOOST_TEST(normalize_answer("a") == "");
  BOOST_TEST(vqa_exact_match("Left.", "left"));
  BOOST_TEST(vqa_exact_match("a sneaker", "the sneaker"));
  BOOST_TEST(!vqa_exact_match("2", "two"));
  BOOST_TEST(!vqa_exact_match("ankle boot", "boot"));
  BOOST_TEST(!vqa_exact_match("yes", "no"));
}

BOOST_AUTO_TEST_CASE(vqa_accuracy_overall_and_per_type) {
  VqaAccuracy accuracy;
  BOOST_TEST(accuracy.overall() == 0.0);
  BOOST_TEST(accuracy.add("2", "2", "count"));
  BOOST_TEST(!accuracy.add("3", "2", "count"));
  BOOST_TEST(accuracy.add("Yes.", "yes", "existence"));
  BOOST_TEST(accuracy.add("the left", "left", "place"));
  BOOST_TEST(!accuracy.add("small", "large", "size"));
  BOOST_TEST(accuracy.add("1", "1", "count"));
  BOOST_TEST(accuracy.questions() == 6);
  BOOST_TEST(accuracy.overall() == 4.0 / 6, boost::test_tools::tolerance(1e-15));
  const auto by_type = accuracy.by_type();
  BOOST_TEST(by_type.size() == 4u);
  BOOST_TEST(by_type.at("count") == 2.0 / 3, boost::test_tools::tolerance(1e-15));
  BOOST_TEST(by_type.at("existence") == 1.0);
  BOOST_TEST(by_type.at("place") == 1.0);
  BOOST_TEST(by_type.at("size") == 0.0);
}

BOOST_AUTO_TEST_SUITE_END()
