// Zero-shot accuracy with a prompt ensemble, retrieval recall@k and the linear probe, on
// embeddings built by hand so that the right answer is known.
#include <boost/test/unit_test.hpp>
#include <cmath>

#include "autograd/engine.h"
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

BOOST_AUTO_TEST_CASE(linear_probe_learns_separable_classes_and_not_noise) {
  // Five Gaussian blobs in 8-D, centres 3 apart, unit noise.
  const int64_t classes = 5, d = 8, n_train = 500, n_test = 250;
  Generator gen(7);
  const Tensor centres = randn({classes, d}, gen) * 3.0;
  auto blobs = [&](int64_t n, std::vector<int64_t>& y) {
    y.clear();
    for (int64_t i = 0; i < n; ++i) y.push_back(i % classes);
    return index_select(centres, 0, Tensor::from_vector(y, {n})) + randn({n, d}, gen);
  };
  std::vector<int64_t> ytr, yte;
  const Tensor xtr = blobs(n_train, ytr), xte = blobs(n_test, yte);
  const nn::LinearProbeResult good = nn::linear_probe(xtr, labels_of(ytr), xte, labels_of(yte), classes);
  BOOST_TEST_MESSAGE("probe on blobs: train " << good.train_accuracy << " test " << good.test_accuracy);
  BOOST_TEST(good.test_accuracy > 0.9, "test accuracy " << good.test_accuracy);
  BOOST_TEST(good.final_loss < 0.5, "final loss " << good.final_loss);

  // Labels unrelated to the features: the probe can memorise some of the train set but cannot
  // beat chance (0.2) by much on the test set.
  const Tensor rtr = randint(0, classes, {n_train}, gen), rte = randint(0, classes, {n_test}, gen);
  const nn::LinearProbeResult bad = nn::linear_probe(xtr, rtr, xte, rte, classes);
  BOOST_TEST_MESSAGE("probe on noise labels: train " << bad.train_accuracy << " test " << bad.test_accuracy);
  BOOST_TEST(bad.test_accuracy < 0.35, "test accuracy on noise labels " << bad.test_accuracy);

  BOOST_CHECK_THROW(nn::linear_probe(xtr, labels_of(ytr), xte, labels_of(yte), 3), Error);  // label 4 >= 3
}

BOOST_AUTO_TEST_CASE(linear_probe_fits_a_linearly_separable_problem_deterministically) {
  // Labels are the argmax of a fixed random linear map, so some linear classifier is exact; the
  // probe should find nearly all of it on held-out data too.
  const int64_t classes = 4, d = 10;
  Generator gen(3);
  const Tensor truth = randn({d, classes}, gen);
  auto sample = [&](int64_t n, Tensor& labels) {
    const Tensor x = randn({n, d}, gen);
    labels = argmax(matmul(x, truth), 1);
    return x;
  };
  Tensor ytr, yte;
  const Tensor xtr = sample(4000, ytr), xte = sample(1000, yte);
  nn::LinearProbeOptions o;
  o.steps = 500;
  o.weight_decay = 0;
  const nn::LinearProbeResult r = nn::linear_probe(xtr, ytr, xte, yte, classes, o);
  BOOST_TEST_MESSAGE("separable: train " << r.train_accuracy << " test " << r.test_accuracy << " loss " << r.final_loss);
  BOOST_TEST(r.train_accuracy >= 0.98, "train accuracy " << r.train_accuracy);
  BOOST_TEST(r.test_accuracy >= 0.97, "test accuracy " << r.test_accuracy);
  // Same inputs and options: the same numbers, bit for bit.
  const nn::LinearProbeResult again = nn::linear_probe(xtr, ytr, xte, yte, classes, o);
  BOOST_TEST(again.final_loss == r.final_loss);
  BOOST_TEST(again.test_accuracy == r.test_accuracy);
  // The probe needs no graph: inside a no-grad scope (as in an evaluation) it gives the same.
  {
    NoGradGuard no_grad;
    BOOST_TEST(nn::linear_probe(xtr, ytr, xte, yte, classes, o).final_loss == r.final_loss);
  }
  // Weight decay shrinks the weights, so the training loss of a strongly decayed probe is higher.
  o.weight_decay = 1.0;
  BOOST_TEST(nn::linear_probe(xtr, ytr, xte, yte, classes, o).final_loss > r.final_loss + 0.1);
  // Bad input is named.
  BOOST_CHECK_THROW(nn::linear_probe(xtr, ytr, Tensor::zeros({4, d + 1}), labels_of({0, 1, 2, 3}), classes), Error);
  BOOST_CHECK_THROW(nn::linear_probe(xtr, ytr, xte, yte, 1), Error);
  BOOST_CHECK_THROW(nn::linear_probe(xtr.slice(0, 0, 0), labels_of({}), xte, yte, classes), Error);
}

BOOST_AUTO_TEST_SUITE_END()
