// Gradient checks (f64, see autograd/gradcheck.h for the tolerances) for the core ops, plus the
// checker's own ability to fail.
#include <boost/test/unit_test.hpp>

#include "tests/support/gradcheck_helpers.h"
#include "autograd/error.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "autograd/random.h"

using namespace tessera;
using test::leaf;
using test::expect_ok;


BOOST_AUTO_TEST_SUITE(gradcheck_core)

BOOST_AUTO_TEST_CASE(binary_broadcasting) {
  const Tensor a = leaf({3, 1, 4}, 1), b = leaf({2, 4}, 2, 0.5, 1.5);
  expect_ok([](auto& x) { return x[0] + x[1]; }, {a, b});
  expect_ok([](auto& x) { return x[0] - x[1]; }, {a, b});
  expect_ok([](auto& x) { return x[0] * x[1]; }, {a, b});
  expect_ok([](auto& x) { return x[0] / x[1]; }, {a, b});
}

BOOST_AUTO_TEST_CASE(non_contiguous_input) {
  const Tensor base = leaf({4, 5}, 3);
  expect_ok([](auto& x) { return exp(x[0].t()) * 2.0; }, {base});
}

BOOST_AUTO_TEST_CASE(matmul_batched_and_transposed) {
  const Tensor a = leaf({2, 3, 4}, 4), b = leaf({4, 5}, 5);
  expect_ok([](auto& x) { return matmul(x[0], x[1]); }, {a, b});
  const Tensor c = leaf({5, 4}, 6);
  expect_ok([](auto& x) { return matmul(x[0], x[1].t()); }, {a, c});
}

BOOST_AUTO_TEST_CASE(reductions_and_softmax) {
  const Tensor x = leaf({3, 4, 5}, 7);
  expect_ok([](auto& v) { return sum(v[0], {0, 2}); }, {x});
  expect_ok([](auto& v) { return mean(v[0], {1}, true); }, {x});
  expect_ok([](auto& v) { return var(v[0], {-1}); }, {x});
  expect_ok([](auto& v) { return max(v[0], {1}); }, {x});
  expect_ok([](auto& v) { return softmax(v[0], 1); }, {x});
  expect_ok([](auto& v) { return log_softmax(v[0], -1); }, {x});
}

BOOST_AUTO_TEST_CASE(a_wrong_backward_is_caught) {
  // mul's true gradient wrt a is g*b; this op claims g*b*1.01.
  const Tensor a = leaf({2, 3}, 8), b = leaf({2, 3}, 9);
  auto wrong_mul = [](const std::vector<Tensor>& x) {
    Tensor y;
    {
      NoGradGuard no_grad;
      y = x[0] * x[1];
    }
    const Tensor sa = x[0].detach(), sb = x[1].detach();
    return record(y, "wrong_mul", {x[0], x[1]},
                  [sa, sb](const Tensor& g) { return std::vector<Tensor>{g * sb * 1.01, g * sa}; });
  };
  const GradcheckResult r = gradcheck(wrong_mul, {a, b});
  BOOST_TEST(!r.ok);
  BOOST_TEST(r.message.find("input 0") != std::string::npos, r.message);
}

BOOST_AUTO_TEST_CASE(second_backward_without_retain_graph_is_an_error) {
  const Tensor a = leaf({3}, 10);
  Tensor loss = sum(exp(a));
  loss.backward();
  BOOST_CHECK_THROW(loss.backward(), Error);
  Tensor again = sum(exp(a));
  again.backward(Tensor(), true);
  again.backward();
  BOOST_TEST(a.grad().defined());
}

BOOST_AUTO_TEST_SUITE_END()
