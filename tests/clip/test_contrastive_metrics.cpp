// Zero-shot accuracy with a prompt ensemble and retrieval recall@k (in one pass and chunked over
// the whole set, against a brute-force reference), on embeddings built so that the answer is known.
#include <boost/test/unit_test.hpp>
#include <cmath>

#include "autograd/error.h"
#include "autograd/ops.h"
#include "autograd/random.h"
#include "nn/contrastive_metrics.h"

using namespace tessera;
namespace tt = boost::test_tools;

namespace {
Tensor matrix(const std::vector<std::vector<double>>& rows) {
  std::vector<float> v;
  for (const auto& r : rows) v.insert(v.end(), r.begin(), r.end());
  return Tensor::from_vector(v, {int64_t(rows.size()), int64_t(rows[0].size())});
}
Tensor labels_of(const std::vector<int64_t>& v) { return Tensor::from_vector(v, {int64_t(v.size())}); }
}  // namespace

BOOST_AUTO_TEST_SUITE(contrastive_metrics)

BOOST_AUTO_TEST_CASE(prompt_ensemble_averages_unit_vectors) {
  // Class 0: templates along x (length 10) and y (length 1): the mean of the *normalised*
  // vectors points at 45 degrees, whatever the lengths.
  const Tensor text = Tensor::from_vector(std::vector<float>{10, 0, 0, 1, /*class 1*/ 0, -3, 0, -3}, {2, 2, 2});
  const auto c = nn::prompt_ensemble(text).to_vector<float>();
  const float h = float(std::sqrt(0.5));
  BOOST_TEST(c[0] == h, tt::tolerance(1e-6f));
  BOOST_TEST(c[1] == h, tt::tolerance(1e-6f));
  BOOST_TEST(c[2] == 0.0f, tt::tolerance(1e-6f));
  BOOST_TEST(c[3] == -1.0f, tt::tolerance(1e-6f));
  BOOST_CHECK_THROW(nn::prompt_ensemble(Tensor::zeros({2, 3})), Error);
}

BOOST_AUTO_TEST_CASE(zero_shot_accuracy_counts_nearest_class) {
  const Tensor classes = matrix({{1, 0}, {0, 1}, {-1, 0}});
  // Cosine, not dot product: the long vector (5, 4) is closer in angle to class 0.
  const Tensor images = matrix({{5, 4}, {0.1, 2}, {-3, 0.5}, {0.2, -1}});
  BOOST_TEST(nn::zero_shot_predict(images, classes).to_vector<int64_t>() == (std::vector<int64_t>{0, 1, 2, 0}),
             tt::per_element());
  BOOST_TEST(nn::zero_shot_accuracy(images, classes, labels_of({0, 1, 2, 1})) == 0.75);
  BOOST_TEST(nn::zero_shot_accuracy(images, classes, labels_of({2, 2, 2, 2})) == 0.25);
  BOOST_CHECK_THROW(nn::zero_shot_accuracy(images, matrix({{1, 0, 0}}), labels_of({0, 0, 0, 0})), Error);
  BOOST_CHECK_THROW(nn::zero_shot_accuracy(images, classes, labels_of({0, 0})), Error);
}

BOOST_AUTO_TEST_CASE(retrieval_recall_at_k) {
  const Tensor images = matrix({{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}});
  const Tensor texts = matrix({{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 0.1, 1}, {0, 0, 1, 0}});
  // Pair ranks (items at least as similar that are not the pair), both directions: 0, 0, 1, 3.
  const nn::RecallAtK r = nn::retrieval_recall(images, texts, {1, 2, 3, 4});
  BOOST_TEST(r.image_to_text == (std::vector<double>{0.5, 0.75, 0.75, 1.0}), tt::per_element());
  BOOST_TEST(r.text_to_image == (std::vector<double>{0.5, 0.75, 0.75, 1.0}), tt::per_element());
  // By class: 2 and 3 share a class, so each finds a same-class item first.
  const nn::RecallAtK c = nn::retrieval_recall(images, texts, {1}, labels_of({0, 1, 2, 2}));
  BOOST_TEST(c.image_to_text[0] == 1.0);
  BOOST_TEST(c.text_to_image[0] == 1.0);
  BOOST_CHECK_THROW(nn::retrieval_recall(images, texts, {0}), Error);
  BOOST_CHECK_THROW(nn::retrieval_recall(images, matrix({{1, 0, 0, 0}}), {1}), Error);
}

// Recall@k by brute force: every cosine in double, the rank of the best relevant item counted
// over all N items, written independently of the library's chunked version.
nn::RecallAtK brute_force_recall(const Tensor& images, const Tensor& texts, const std::vector<int64_t>& ks,
                                 const std::vector<int64_t>& labels) {
  const int64_t n = images.size(0), d = images.size(1);
  const std::vector<double> a = images.to_vector<double>(), b = texts.to_vector<double>();
  auto cosine = [&](int64_t i, int64_t j) {
    double dot = 0, na = 0, nb = 0;
    for (int64_t e = 0; e < d; ++e) {
      const double x = a[size_t(i * d + e)], y = b[size_t(j * d + e)];
      dot += x * y, na += x * x, nb += y * y;
    }
    return dot / std::sqrt(na * nb);
  };
  auto relevant = [&](int64_t q, int64_t j) { return labels.empty() ? q == j : labels[size_t(q)] == labels[size_t(j)]; };
  nn::RecallAtK r;
  r.k = ks;
  for (int64_t k : ks) {
    int64_t i2t = 0, t2i = 0;
    for (int64_t q = 0; q < n; ++q) {
      for (int direction = 0; direction < 2; ++direction) {
        auto sim = [&](int64_t j) { return direction == 0 ? cosine(q, j) : cosine(j, q); };
        double best = -1e300;
        for (int64_t j = 0; j < n; ++j)
          if (relevant(q, j)) best = std::max(best, sim(j));
        int64_t above = 0;
        for (int64_t j = 0; j < n; ++j) above += !relevant(q, j) && sim(j) >= best;
        (direction == 0 ? i2t : t2i) += above < k;
      }
    }
    r.image_to_text.push_back(double(i2t) / double(n));
    r.text_to_image.push_back(double(t2i) / double(n));
  }
  return r;
}

BOOST_AUTO_TEST_CASE(retrieval_recall_over_the_whole_set_matches_brute_force_in_any_chunking) {
  // 53 noisy pairs in 6-D: texts are their images plus noise, so recall is neither 0 nor 1.
  const int64_t n = 53, d = 6;
  Generator gen(11);
  const Tensor images = randn({n, d}, gen);
  const Tensor texts = images + randn({n, d}, gen) * 0.9;
  const Tensor labels = randint(0, 4, {n}, gen);
  const std::vector<int64_t> ks{1, 3, 5, 10};
  for (const bool labelled : {false, true}) {
    const nn::RecallAtK want = brute_force_recall(images, texts, ks, labelled ? labels.to_vector<int64_t>() : std::vector<int64_t>{});
    BOOST_TEST_MESSAGE((labelled ? "by class" : "exact pair") << ": i2t@1 " << want.image_to_text[0] << " t2i@1 "
                                                              << want.text_to_image[0]);
    BOOST_TEST(want.image_to_text[0] > 0.05);  // the data is neither trivial nor hopeless
    BOOST_TEST(want.image_to_text[0] < 0.95);
    // Chunks of 1, of 8 and 10 (neither divides 53), of all rows at once, and the automatic size.
    for (const int64_t chunk : {1, 8, 10, 53, 0}) {
      const nn::RecallAtK got = nn::retrieval_recall(images, texts, ks, labelled ? labels : Tensor(), chunk);
      BOOST_TEST(got.k == ks, tt::per_element());
      BOOST_TEST(got.image_to_text == want.image_to_text, tt::per_element());
      BOOST_TEST(got.text_to_image == want.text_to_image, tt::per_element());
    }
  }
  BOOST_CHECK_THROW(nn::retrieval_recall(images, texts, ks, Tensor(), -1), Error);
}

BOOST_AUTO_TEST_SUITE_END()
