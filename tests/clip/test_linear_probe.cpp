// The linear probe (nn/linear_probe.h): it learns what is linearly there (blobs, a separable
// problem) and nothing that is not (random labels), reaches the optimum of its objective (checked
// against plain gradient descent on the same objective through autograd), is deterministic, and
// names bad input.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <sstream>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops.h"
#include "autograd/random.h"
#include "nn/linear_probe.h"

using namespace tessera;
namespace tt = boost::test_tools;

namespace {
Tensor labels_of(const std::vector<int64_t>& v) { return Tensor::from_vector(v, {int64_t(v.size())}); }
}  // namespace

BOOST_AUTO_TEST_SUITE(linear_probe)

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
  BOOST_TEST(r.test_accuracy >= 0.99, "test accuracy " << r.test_accuracy);
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

BOOST_AUTO_TEST_CASE(linear_probe_reaches_the_optimum_of_its_objective) {
  // Overlapping blobs (so the optimum is finite) and a strong weight decay (so it is unique).
  const int64_t classes = 3, d = 4, n = 150;
  Generator gen(5);
  const Tensor centres = randn({classes, d}, gen);
  std::vector<int64_t> y;
  for (int64_t i = 0; i < n; ++i) y.push_back(i % classes);
  const Tensor x = (index_select(centres, 0, labels_of(y)) + randn({n, d}, gen) * 1.5) * 4.0 + 2.0;
  nn::LinearProbeOptions o;
  o.weight_decay = 0.05;
  const nn::LinearProbeResult r = nn::linear_probe(x, labels_of(y), x, labels_of(y), classes, o);
  BOOST_TEST(r.converged);
  BOOST_TEST(r.steps < o.steps);

  // Reference: the same objective (features standardised by their mean and population std, mean
  // cross-entropy + wd |W|^2 / 2) minimised by plain gradient descent through autograd, in f64.
  const Tensor x64 = x.to(DType::f64);
  const Tensor xs = (x64 - mean(x64, {0}, true)) / sqrt(var(x64, {0}, 0, true));
  Tensor w = Tensor::zeros({d, classes}, DType::f64), b = Tensor::zeros({classes}, DType::f64);
  w.requires_grad_(), b.requires_grad_();
  const Tensor target = Tensor::from_vector(y, {n, 1});
  double reference = 0;
  for (int step = 0; step < 3000; ++step) {
    w.zero_grad(), b.zero_grad();
    const Tensor loss = -mean(gather(log_softmax(matmul(xs, w) + b, 1), 1, target)) + sum(square(w)) * (0.5 * o.weight_decay);
    reference = loss.item();
    loss.backward();
    NoGradGuard no_grad;
    add_(w, w.grad(), -0.5);
    add_(b, b.grad(), -0.5);
  }
  BOOST_TEST_MESSAGE("L-BFGS loss " << r.final_loss << " in " << r.steps << " steps; gradient descent " << reference);
  BOOST_TEST(r.final_loss == reference, tt::tolerance(1e-7));
}

BOOST_AUTO_TEST_CASE(weight_decay_search_picks_regularisation_when_it_helps) {
  // 200 training examples in 150-D where only the first feature carries the label: without decay
  // the probe fits the noise dimensions; the search should prefer a strong decay, chosen on a
  // split of the training set only.
  const int64_t n = 200, d = 150, n_test = 600;
  Generator gen(9);
  auto sample = [&](int64_t rows, Tensor& y) {
    const Tensor x = randn({rows, d}, gen);
    y = greater(x.slice(1, 0, 1).squeeze(1), Tensor::zeros({rows})).to(DType::i64);
    return x;
  };
  Tensor ytr, yte;
  const Tensor xtr = sample(n, ytr), xte = sample(n_test, yte);
  nn::LinearProbeOptions o;
  o.weight_decay = 0;
  const nn::LinearProbeResult plain = nn::linear_probe(xtr, ytr, xte, yte, 2, o);
  const nn::LinearProbeSweep sweep = nn::linear_probe_sweep(xtr, ytr, xte, yte, 2, o);
  std::ostringstream seen;
  for (size_t i = 0; i < sweep.validation_accuracy.size(); ++i) seen << sweep.validation_accuracy[i] << " ";
  BOOST_TEST_MESSAGE("no decay: test " << plain.test_accuracy << "; search chose " << sweep.weight_decay
                                       << " (validation " << seen.str() << "): test " << sweep.result.test_accuracy);
  BOOST_TEST(sweep.validation_accuracy.size() == nn::WeightDecaySearch{}.grid.size());
  BOOST_TEST(sweep.weight_decay >= 1e-2);
  BOOST_TEST(sweep.result.test_accuracy > plain.test_accuracy);
  // Deterministic, and bad searches are named.
  BOOST_TEST(nn::linear_probe_sweep(xtr, ytr, xte, yte, 2, o).result.final_loss == sweep.result.final_loss);
  BOOST_CHECK_THROW(nn::linear_probe_sweep(xtr.slice(0, 0, 3), ytr.slice(0, 0, 3), xte, yte, 2), Error);
  BOOST_CHECK_THROW(nn::linear_probe_sweep(xtr, ytr, xte, yte, 2, o, nn::WeightDecaySearch{{}, 5}), Error);
}

BOOST_AUTO_TEST_SUITE_END()
