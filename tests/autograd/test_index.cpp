// Forward values and errors of the indexing, selection and comparison ops (their gradients are
// checked in test_gradcheck_ops.cpp).
#include <boost/test/unit_test.hpp>

#include "autograd/error.h"
#include "autograd/ops.h"

using namespace tessera;

namespace {

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }
Tensor f64(const std::vector<double>& v, const Shape& shape) { return Tensor::from_vector<double>(v, shape); }
Tensor i64(const std::vector<int64_t>& v, const Shape& shape) { return Tensor::from_vector<int64_t>(v, shape); }

// Runs f, which must throw a tessera::Error whose message contains every one of `parts`.
template <class F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    BOOST_ERROR("no error thrown; expected one mentioning " << parts.front());
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const std::string& p : parts) BOOST_TEST(message.find(p) != std::string::npos, "'" << p << "' missing from: " << message);
  }
}

// x = [[0, 1, 2], [10, 11, 12], [20, 21, 22], [30, 31, 32]]
Tensor table() { return f64({0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32}, {4, 3}); }

}  // namespace

BOOST_AUTO_TEST_SUITE(index_ops)

BOOST_AUTO_TEST_CASE(index_select_values) {
  const Tensor x = table();
  for (DType t : {DType::i32, DType::i64}) {
    const Tensor rows = i64({3, 0, 3}, {3}).to(t);
    BOOST_TEST(values(index_select(x, 0, rows)) == (std::vector<double>{30, 31, 32, 0, 1, 2, 30, 31, 32}));
    BOOST_TEST(values(index_select(x, 1, i64({2, 0}, {2}).to(t))) == (std::vector<double>{2, 0, 12, 10, 22, 20, 32, 30}));
    BOOST_TEST(values(index_select(x.t(), 1, rows)) == (std::vector<double>{30, 0, 30, 31, 1, 31, 32, 2, 32}));
  }
  BOOST_TEST(index_select(x, 0, i64({}, {0})).shape() == (Shape{0, 3}));
  // any dtype can be looked up
  BOOST_TEST(values(index_select(i64({5, 6, 7}, {3}), 0, i64({2, 2}, {2}))) == (std::vector<double>{7, 7}));
}

BOOST_AUTO_TEST_CASE(gather_values) {
  const Tensor x = table();
  // out[i][j] = x[i][idx[i][j]]: the label pick of a cross-entropy
  BOOST_TEST(values(gather(x, 1, i64({2, 0, 1, 1}, {4, 1}))) == (std::vector<double>{2, 10, 21, 31}));
  // out[i][j] = x[idx[i][j]][j]
  BOOST_TEST(values(gather(x, 0, i64({3, 0, 1}, {1, 3}).to(DType::i32))) == (std::vector<double>{30, 1, 12}));
  // a strided index and a strided input
  const Tensor idx = i64({0, 1, 2, 0}, {2, 2}).t();  // [[0, 2], [1, 0]]
  BOOST_TEST(values(gather(x.t(), 1, idx)) == (std::vector<double>{0, 20, 11, 1}));
}

BOOST_AUTO_TEST_CASE(embedding_values) {
  const Tensor w = table();
  const Tensor out = embedding(w, i64({1, 3, 1, 0}, {2, 2}).to(DType::i32));
  BOOST_TEST(out.shape() == (Shape{2, 2, 3}));
  BOOST_TEST(values(out) == (std::vector<double>{10, 11, 12, 30, 31, 32, 10, 11, 12, 0, 1, 2}));
  // gradient: rows used twice get twice the gradient, unused rows none
  Tensor wt = w.clone().detach();
  wt.requires_grad_();
  sum(embedding(wt, i64({1, 3, 1}, {3}))).backward();
  BOOST_TEST(values(wt.grad()) == (std::vector<double>{0, 0, 0, 2, 2, 2, 0, 0, 0, 1, 1, 1}));
}

BOOST_AUTO_TEST_CASE(where_masked_fill_and_comparisons) {
  const Tensor a = f64({1, 2, 3, 4}, {2, 2}), b = f64({10, 20}, {2});
  const Tensor cond = Tensor::from_vector<uint8_t>({1, 0, 0, 1}, {2, 2});
  BOOST_TEST(values(where(cond, a, b)) == (std::vector<double>{1, 20, 10, 4}));
  BOOST_TEST(values(where(Tensor::from_vector<uint8_t>({0, 1}, {2, 1}), a, b)) == (std::vector<double>{10, 20, 3, 4}));
  BOOST_TEST(values(masked_fill(a, cond.t(), -1)) == (std::vector<double>{-1, 2, 3, -1}));
  BOOST_TEST(values(masked_fill(a, Tensor::from_vector<uint8_t>({0, 1}, {2}), 0)) == (std::vector<double>{1, 0, 3, 0}));
  BOOST_TEST(values(greater(a, f64({2.5}, {1}))) == (std::vector<double>{0, 0, 1, 1}));
  BOOST_TEST(values(equal(a, a.t())) == (std::vector<double>{1, 0, 0, 1}));
  BOOST_TEST((greater(a, a).dtype() == DType::u8));
  Tensor tracked = a.clone();
  tracked.requires_grad_();
  BOOST_TEST(!greater(tracked, a).requires_grad());  // comparisons carry no gradient
  BOOST_TEST(!equal(tracked, a).requires_grad());
  BOOST_TEST(values(equal(i64({1, 2}, {2}), i64({2}, {1}))) == (std::vector<double>{0, 1}));
  // masked_fill with -inf before a softmax: the masked entries get exactly zero weight
  const Tensor p = softmax(masked_fill(f64({0.5, 1, 2}, {3}), Tensor::from_vector<uint8_t>({0, 1, 0}, {3}), -INFINITY));
  BOOST_TEST(values(p)[1] == 0);
  // where's gradient goes only to the side taken
  Tensor x = a.clone().detach(), y = b.clone().detach();
  x.requires_grad_();
  y.requires_grad_();
  sum(where(cond, x, y)).backward();
  BOOST_TEST(values(x.grad()) == (std::vector<double>{1, 0, 0, 1}));
  BOOST_TEST(values(y.grad()) == (std::vector<double>{1, 1}));
}

BOOST_AUTO_TEST_CASE(bad_indices_name_the_op_the_value_and_the_shape) {
  const Tensor x = table();
  expect_error([&] { index_select(x, 0, i64({1, 4}, {2})); }, {"index_select", "index 4", "[4, 3]"});
  expect_error([&] { index_select(x, 1, i64({-1}, {1}).to(DType::i32)); }, {"index_select", "index -1", "[4, 3]"});
  expect_error([&] { index_select(x, 0, f64({1}, {1})); }, {"index_select", "i32 or i64", "f64"});
  expect_error([&] { index_select(x, 0, i64({1, 2}, {1, 2})); }, {"index_select", "1-D", "[1, 2]"});
  expect_error([&] { index_select(x, 2, i64({0}, {1})); }, {"index_select", "dim 2"});
  expect_error([&] { gather(x, 1, i64({0, 3}, {2, 1})); }, {"gather", "index 3", "[4, 3]"});
  expect_error([&] { gather(x, 1, i64({0, 1}, {2})); }, {"gather", "[2]", "[4, 3]"});
  expect_error([&] { gather(x, 0, i64({0, 0, 0, 0}, {1, 4})); }, {"gather", "[1, 4]", "[4, 3]"});
  expect_error([&] { embedding(x, i64({7}, {1})); }, {"embedding", "index 7", "[4, 3]"});
  expect_error([&] { embedding(f64({1}, {1}), i64({0}, {1})); }, {"embedding", "[1]"});
  expect_error([&] { embedding(x, f64({0}, {1})); }, {"embedding", "i32 or i64"});
  expect_error([&] { where(f64({1}, {1}), x, x); }, {"where", "u8"});
  expect_error([&] { where(Tensor::zeros({4, 3}, DType::u8), x, f64({1, 2}, {2})); }, {"where", "[4, 3]", "[2]"});
  expect_error([&] { where(Tensor::zeros({2}, DType::u8), x, x); }, {"where", "[2]", "[4, 3]"});
  expect_error([&] { where(Tensor::zeros({3}, DType::u8), x, x.to(DType::f32)); }, {"where", "f64", "f32"});
  expect_error([&] { masked_fill(x, Tensor::zeros({2, 4, 3}, DType::u8), 0); }, {"masked_fill", "[2, 4, 3]", "[4, 3]"});
  expect_error([&] { masked_fill(x, Tensor::zeros({3}, DType::i64), 0); }, {"masked_fill", "u8"});
  expect_error([&] { greater(x, f64({1, 2}, {2})); }, {"greater", "[4, 3]", "[2]"});
  expect_error([&] { equal(x, x.to(DType::f32)); }, {"equal", "f64", "f32"});
}

BOOST_AUTO_TEST_SUITE_END()
