// cross_entropy and mse_loss: values against a reference written with plain ops, gradient
// checks in f64, and the errors a caller gets for bad targets.
#include <boost/test/unit_test.hpp>

#include <cmath>

#include "autograd/error.h"
#include "autograd/gradcheck.h"
#include "autograd/ops/losses.h"
#include "autograd/ops.h"
#include "autograd/random.h"

using namespace tessera;

namespace {
Tensor leaf(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  Tensor t = uniform(shape, -2, 2, gen, DType::f64);
  t.requires_grad_();
  return t;
}

// The textbook formula, element by element.
double reference_cross_entropy(const Tensor& logits, const std::vector<int64_t>& y, double s) {
  const int64_t b = logits.size(0), c = logits.size(1);
  const std::vector<double> x = logits.to_vector<double>();
  double total = 0;
  for (int64_t i = 0; i < b; ++i) {
    double m = -1e300, z = 0;
    for (int64_t k = 0; k < c; ++k) m = std::max(m, x[i * c + k]);
    for (int64_t k = 0; k < c; ++k) z += std::exp(x[i * c + k] - m);
    for (int64_t k = 0; k < c; ++k) {
      const double logp = x[i * c + k] - m - std::log(z);
      const double q = (k == y[i] ? 1 - s : 0) + s / double(c);
      total -= q * logp;
    }
  }
  return total / double(b);
}
}  // namespace

BOOST_AUTO_TEST_SUITE(losses)

BOOST_AUTO_TEST_CASE(cross_entropy_matches_the_formula) {
  const Tensor logits = leaf({5, 7}, 1);
  const std::vector<int64_t> y = {0, 6, 3, 3, 1};
  const Tensor targets = Tensor::from_vector(y, {5});
  for (double s : {0.0, 0.1, 1.0}) {
    const double got = cross_entropy(logits, targets, s).item();
    BOOST_TEST(std::abs(got - reference_cross_entropy(logits, y, s)) < 1e-12, "smoothing " << s);
  }
  // i32 targets and f32 logits give the same value to f32 precision.
  const double f32 = cross_entropy(logits.detach().to(DType::f32), targets.to(DType::i32)).item();
  BOOST_TEST(std::abs(f32 - reference_cross_entropy(logits, y, 0)) < 1e-5);
}

BOOST_AUTO_TEST_CASE(cross_entropy_is_stable_for_large_logits) {
  const Tensor logits = Tensor::from_vector(std::vector<float>{1000, 0, -1000, 1000}, {2, 2});
  const Tensor targets = Tensor::from_vector(std::vector<int64_t>{1, 0}, {2});
  const double loss = cross_entropy(logits, targets).item();
  BOOST_TEST(std::isfinite(loss));
  BOOST_TEST(std::abs(loss - 1500.0) < 1e-3);  // sample 0 costs 1000, sample 1 costs 2000
}

BOOST_AUTO_TEST_CASE(cross_entropy_gradcheck) {
  const Tensor targets = Tensor::from_vector(std::vector<int64_t>{2, 0, 4, 1}, {4});
  for (double s : {0.0, 0.2}) {
    const GradcheckResult r =
        gradcheck([&](const std::vector<Tensor>& x) { return cross_entropy(x[0], targets, s); }, {leaf({4, 5}, 2)});
    BOOST_TEST(r.ok, r.message);
  }
  // Through a non-contiguous view, and inside a larger graph.
  const GradcheckResult r = gradcheck(
      [&](const std::vector<Tensor>& x) { return cross_entropy(x[0].t() * 3.0, targets) * 2.0; }, {leaf({5, 4}, 3)});
  BOOST_TEST(r.ok, r.message);
}

BOOST_AUTO_TEST_CASE(cross_entropy_rejects_bad_targets) {
  const Tensor logits = leaf({2, 3}, 4);
  BOOST_CHECK_THROW(cross_entropy(logits, Tensor::from_vector(std::vector<int64_t>{0, 3}, {2})), Error);
  BOOST_CHECK_THROW(cross_entropy(logits, Tensor::from_vector(std::vector<int64_t>{0, -1}, {2})), Error);
  BOOST_CHECK_THROW(cross_entropy(logits, Tensor::from_vector(std::vector<int64_t>{0, 1, 2}, {3})), Error);
  BOOST_CHECK_THROW(cross_entropy(logits, Tensor::from_vector(std::vector<float>{0, 1}, {2})), Error);
  BOOST_CHECK_THROW(cross_entropy(logits.reshape({6}), Tensor::from_vector(std::vector<int64_t>{0}, {1})), Error);
  try {
    cross_entropy(logits, Tensor::from_vector(std::vector<int64_t>{0, 9}, {2}));
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find("target 9 of sample 1") != std::string::npos, e.what());
  }
}

BOOST_AUTO_TEST_CASE(mse_value_and_gradcheck) {
  const Tensor a = Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2});
  const Tensor b = Tensor::from_vector(std::vector<double>{1, 0, 3, 0}, {2, 2});
  BOOST_TEST(mse_loss(a, b).item() == (4.0 + 16.0) / 4.0);
  const Tensor target = leaf({3, 4}, 5).detach();
  const GradcheckResult r =
      gradcheck([&](const std::vector<Tensor>& x) { return mse_loss(x[0], target); }, {leaf({3, 4}, 6)});
  BOOST_TEST(r.ok, r.message);
  BOOST_CHECK_THROW(mse_loss(a, target), Error);
}

BOOST_AUTO_TEST_SUITE_END()
