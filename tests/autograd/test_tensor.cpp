// Tensor basics: dtypes, creation, views sharing storage, printing, allclose, the Philox RNG, and
// forward values of the ops checked against plain loops written here.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <numeric>
#include <sstream>

#include "autograd/error.h"
#include "autograd/ops.h"
#include "autograd/random.h"
#include "kernels/threads.h"

using namespace tessera;

namespace {

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

Tensor f64(const std::vector<double>& v, const Shape& shape) { return Tensor::from_vector<double>(v, shape); }

Tensor random_f64(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  return uniform(shape, -1, 1, gen, DType::f64);
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol = 1e-12) {
  BOOST_TEST_REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) BOOST_TEST(std::abs(got[i] - want[i]) <= tol, "element " << i << ": " << got[i] << " vs " << want[i]);
}

// Element (i...) of a tensor through its strides, as the definition of what a view must show.
double element(const Tensor& t, const std::vector<int64_t>& index) { return t.at(index); }

}  // namespace

BOOST_AUTO_TEST_SUITE(tensor)

BOOST_AUTO_TEST_CASE(dtypes_and_conversion) {
  const std::vector<std::pair<DType, size_t>> sizes = {
      {DType::f32, 4}, {DType::f64, 8}, {DType::i32, 4}, {DType::i64, 8}, {DType::u8, 1}};
  for (auto [dtype, size] : sizes) {
    BOOST_TEST(element_size(dtype) == size);
    const Tensor t = Tensor::arange(0, 5, 1, dtype);
    BOOST_TEST((t.dtype() == dtype));
    BOOST_TEST(values(t) == (std::vector<double>{0, 1, 2, 3, 4}));
  }
  const Tensor x = f64({-1.75, 2.5, 300}, {3});
  BOOST_TEST(values(x.to(DType::i32)) == (std::vector<double>{-1, 2, 300}));  // truncation toward zero
  BOOST_TEST(values(x.to(DType::f32)) == (std::vector<double>{-1.75, 2.5, 300}));
  BOOST_TEST(Tensor::from_vector<uint8_t>({0, 255}, {2}).to(DType::i64).to_vector<int64_t>() == (std::vector<int64_t>{0, 255}));
  BOOST_TEST(Tensor::scalar(3.5, DType::f64).item() == 3.5);
  BOOST_CHECK_THROW(Tensor::from_vector<float>({1, 2, 3}, {2, 2}), Error);
  BOOST_CHECK_THROW(f64({1, 2}, {2}).item(), Error);
}

BOOST_AUTO_TEST_CASE(creation) {
  BOOST_TEST(values(Tensor::zeros({2, 2})) == std::vector<double>(4, 0.0));
  BOOST_TEST(values(Tensor::ones({3}, DType::i64)) == std::vector<double>(3, 1.0));
  BOOST_TEST(values(Tensor::full({2}, -2.5, DType::f64)) == (std::vector<double>{-2.5, -2.5}));
  BOOST_TEST(values(Tensor::arange(4)) == (std::vector<double>{0, 1, 2, 3}));
  BOOST_TEST(values(Tensor::arange(1, 2, 0.25, DType::f64)) == (std::vector<double>{1, 1.25, 1.5, 1.75}));
  BOOST_TEST(values(Tensor::arange(3, 0, -1, DType::i32)) == (std::vector<double>{3, 2, 1}));
  BOOST_TEST(Tensor::arange(5, 5, 1).numel() == 0);
  BOOST_TEST(Tensor::zeros({0, 3}).numel() == 0);
  BOOST_CHECK_THROW(Tensor::arange(0, 1, 0), Error);
  BOOST_CHECK_THROW(Tensor::empty({2, -1}), Error);
  // Shapes a file may declare: products past 2^63 elements, or past any memory, are errors, not
  // a signed overflow (undefined) or a wrapped-around small allocation.
  BOOST_CHECK_THROW(Tensor::empty({int64_t(1) << 40, 4096, 4096, 1}), Error);
  BOOST_CHECK_THROW(Tensor::empty({int64_t(1) << 61, 4}, DType::f64), Error);
  BOOST_TEST(shape_numel({0, int64_t(1) << 62, int64_t(1) << 62}) == 0);
  // 64-byte alignment of fresh storage, whatever the size
  for (int64_t n : {1, 3, 17, 1000, 5000})
    BOOST_TEST(reinterpret_cast<uintptr_t>(Tensor::empty({n}, DType::u8).raw_data()) % 64 == 0);
}

BOOST_AUTO_TEST_CASE(views_share_storage) {
  Tensor base = Tensor::arange(0, 24, 1, DType::f64).reshape({2, 3, 4});
  BOOST_TEST(base.is_contiguous());
  const Tensor r = base.reshape({6, 4});
  const Tensor t = base.transpose(0, 2);  // [4, 3, 2]
  const Tensor p = base.permute({1, 2, 0});  // [3, 4, 2]
  const Tensor s = base.slice(2, 1, 4, 2);  // [2, 3, 2]: columns 1 and 3
  const Tensor u = base.unsqueeze(1);  // [2, 1, 3, 4]
  const Tensor q = u.squeeze(1);
  const Tensor e = base.slice(0, 0, 1).expand({5, 3, 4});
  for (const Tensor* v : {&r, &t, &p, &s, &u, &q, &e}) BOOST_TEST(v->storage() == base.storage());
  BOOST_TEST(!t.is_contiguous());
  BOOST_TEST(!s.is_contiguous());
  BOOST_TEST(u.is_contiguous());
  BOOST_TEST(t.shape() == (Shape{4, 3, 2}));
  BOOST_TEST(element(t, {3, 1, 0}) == element(base, {0, 1, 3}));
  BOOST_TEST(element(p, {2, 1, 1}) == element(base, {1, 2, 1}));
  BOOST_TEST(element(s, {1, 2, 1}) == element(base, {1, 2, 3}));
  BOOST_TEST(element(e, {4, 2, 3}) == element(base, {0, 2, 3}));
  // a write through a view shows in the base
  Tensor window = base.slice(1, 1, 2);
  window.fill_(-1);
  BOOST_TEST(element(base, {1, 1, 2}) == -1);
  BOOST_TEST(element(r, {4, 2}) == -1);  // row 4 of [6, 4] is base[1, 1]
  // contiguous() copies a strided view and leaves a contiguous one alone
  const Tensor tc = t.contiguous();
  BOOST_TEST(tc.is_contiguous());
  BOOST_TEST(tc.storage() != base.storage());
  BOOST_TEST(base.contiguous().storage() == base.storage());
}

BOOST_AUTO_TEST_CASE(views_of_views_and_copies) {
  const Tensor base = Tensor::arange(0, 60, 1, DType::f64).reshape({3, 4, 5});
  // slice with a step, of a transpose, of a slice
  const Tensor v = base.slice(2, 1, 5, 2).transpose(0, 1).slice(0, 1, 4, 2);  // [2, 3, 2]
  BOOST_TEST(v.shape() == (Shape{2, 3, 2}));
  std::vector<double> want;
  for (int64_t i : {1, 3})
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k : {1, 3}) want.push_back(double(j * 20 + i * 5 + k));
  BOOST_TEST(values(v) == want);
  BOOST_TEST(values(v.contiguous()) == want);
  // reshape of a non-contiguous tensor copies in logical order
  BOOST_TEST(values(v.reshape({12})) == want);
  BOOST_TEST(values(v.reshape({3, 4}).t().contiguous().t()) == want);
  BOOST_CHECK_THROW(v.view({12}), Error);
  // expand then contiguous repeats the row
  const Tensor row = f64({1, 2, 3}, {1, 3});
  BOOST_TEST(values(row.expand({2, 3}).contiguous()) == (std::vector<double>{1, 2, 3, 1, 2, 3}));
  BOOST_TEST(values(row.t().expand({3, 2}).contiguous()) == (std::vector<double>{1, 1, 2, 2, 3, 3}));
  // select and flatten
  BOOST_TEST(values(base.select(1, -1).select(0, 2)) == (std::vector<double>{55, 56, 57, 58, 59}));
  BOOST_CHECK_THROW(base.select(1, 4), Error);
  BOOST_TEST(base.flatten(1).shape() == (Shape{3, 20}));
  // copy_ into a strided destination, and from an overlapping source
  Tensor m = f64({1, 2, 3, 4}, {2, 2});
  m.copy_(m.t());
  BOOST_TEST(values(m) == (std::vector<double>{1, 3, 2, 4}));
  Tensor dst = Tensor::zeros({3, 4}, DType::f64);
  dst.slice(1, 0, 4, 3).copy_(f64({7, 8, 9, 10, 11, 12}, {3, 2}));
  BOOST_TEST(values(dst) == (std::vector<double>{7, 0, 0, 8, 9, 0, 0, 10, 11, 0, 0, 12}));
  dst.fill_(5);
  Tensor empty_view = dst.slice(1, 2, 2).t();
  empty_view.copy_(Tensor::zeros({0, 3}, DType::f64));  // copies nothing, touches nothing
  empty_view.fill_(-1);
  BOOST_TEST(values(dst) == std::vector<double>(12, 5.0));
}

BOOST_AUTO_TEST_CASE(printing) {
  std::ostringstream os;
  os << f64({1, 2.5, -3, 4}, {2, 2});
  BOOST_TEST(os.str() == "Tensor(shape=[2, 2], dtype=f64)\n[1, 2.5\n -3, 4]");
  std::ostringstream big;
  big << Tensor::zeros({100});
  BOOST_TEST(big.str().find("... (100 values)") != std::string::npos);
  std::ostringstream tracked;
  Tensor x = Tensor::ones({2});
  x.requires_grad_();
  tracked << exp(x);
  BOOST_TEST(tracked.str().find("requires_grad, grad_fn=exp") != std::string::npos, tracked.str());
  std::ostringstream undefined;
  undefined << Tensor();
  BOOST_TEST(undefined.str() == "Tensor(undefined)");
}

BOOST_AUTO_TEST_CASE(allclose_semantics) {
  const Tensor a = f64({1, 2, 3}, {3});
  BOOST_TEST(allclose(a, f64({1, 2, 3 + 1e-9}, {3})));
  BOOST_TEST(!allclose(a, f64({1, 2, 3.01}, {3})));
  BOOST_TEST(allclose(a, f64({1, 2, 3.01}, {3}), 1e-2));
  BOOST_TEST(!allclose(a, f64({1, 2, 3}, {1, 3})));  // shapes must match exactly
  BOOST_TEST(!allclose(f64({NAN}, {1}), f64({NAN}, {1})));
  BOOST_TEST(allclose(a.to(DType::f32), a));
}

BOOST_AUTO_TEST_CASE(rng_does_not_depend_on_thread_count) {
  const int saved = kernels::num_threads();
  std::vector<std::vector<double>> draws;
  for (int threads : {1, 2}) {
    kernels::set_num_threads(threads);
    Generator gen(42);
    std::vector<double> v = values(rand({1000}, gen));
    for (double x : values(randn({999}, gen, DType::f64))) v.push_back(x);
    for (double x : values(uniform({77}, -3, 5, gen, DType::f64))) v.push_back(x);
    for (double x : values(randint(0, 10, {50}, gen))) v.push_back(x);
    draws.push_back(v);
  }
  kernels::set_num_threads(saved);
  BOOST_TEST(draws[0] == draws[1]);
}

BOOST_AUTO_TEST_CASE(rng_seeds_offsets_and_statistics) {
  Generator a(1), b(1), c(2);
  const std::vector<double> va = values(randn({64}, a)), vb = values(randn({64}, b)), vc = values(randn({64}, c));
  BOOST_TEST(va == vb);
  BOOST_TEST(va != vc);
  BOOST_TEST(values(randn({64}, a)) != va);  // a second draw continues from the offset
  manual_seed(7);
  const std::vector<double> d1 = values(rand({5}));
  manual_seed(7);
  BOOST_TEST(values(rand({5})) == d1);

  Generator g(123);
  const int64_t n = 200000;
  const Tensor z = randn({n}, g, DType::f64);
  const double m = mean(z).item(), sd = std::sqrt(var(z).item());
  BOOST_TEST(std::abs(m) < 0.01);  // the standard error is 1/sqrt(n) = 0.0022
  BOOST_TEST(std::abs(sd - 1) < 0.01);
  const Tensor u = uniform({n}, 2, 4, g, DType::f32);
  BOOST_TEST(std::abs(mean(u).item() - 3) < 0.01);
  BOOST_TEST(values(max(u)).front() < 4);
  BOOST_TEST(-values(max(neg(u))).front() >= 2);
  // a range a few f32 ulps wide: rounding low + (high - low) * u to f32 lands on high for ~6%
  // of the draws unless the generator keeps it below
  const double narrow = 1 + std::ldexp(1.0, -20);
  for (double v : values(uniform({1000}, 1, narrow, g, DType::f32))) {
    BOOST_TEST(v >= 1);
    BOOST_TEST(v < narrow);
  }
  const std::vector<int64_t> perm = randperm(100, g).to_vector<int64_t>();
  std::vector<int64_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> ids(100);
  std::iota(ids.begin(), ids.end(), 0);
  BOOST_TEST(sorted == ids);
  BOOST_TEST(perm != ids);
  BOOST_CHECK_THROW(randint(3, 3, {2}, g), Error);
  BOOST_CHECK_THROW(rand({2}, g, DType::i32), Error);
}

// ---- forward values against plain loops ----

BOOST_AUTO_TEST_CASE(broadcast_values) {
  // [1, 3] with [3, 1]: both contiguous and of equal numel, but the result has 9 elements.
  const Tensor row = f64({1, 2, 3}, {1, 3}), col = f64({10, 20, 30}, {3, 1});
  BOOST_TEST(values(row + col) == (std::vector<double>{11, 12, 13, 21, 22, 23, 31, 32, 33}));
  BOOST_TEST(values(f64({1, 2, 3}, {3}) * col) == (std::vector<double>{10, 20, 30, 20, 40, 60, 30, 60, 90}));
  BOOST_TEST(values(sub(Tensor::scalar(1, DType::f64), row)) == (std::vector<double>{0, -1, -2}));
  const Tensor t = Tensor::arange(0, 6, 1, DType::f64).reshape({2, 3}).t();  // strided [3, 2]
  BOOST_TEST(values(t + f64({100, 200}, {2})) == (std::vector<double>{100, 203, 101, 204, 102, 205}));
  BOOST_TEST(values(maximum(row, col.slice(0, 0, 1))) == (std::vector<double>{10, 10, 10}));
}

BOOST_AUTO_TEST_CASE(matmul_values) {
  // A batched product with a transposed left operand and a broadcast right operand, against the
  // triple loop.
  const Tensor a_store = random_f64({2, 5, 3}, 1), b = random_f64({1, 5, 4}, 2);
  const Tensor a = a_store.transpose(1, 2);  // [2, 3, 5]
  const Tensor c = matmul(a, b.expand({2, 5, 4}).slice(0, 0, 2));
  BOOST_TEST(c.shape() == (Shape{2, 3, 4}));
  std::vector<double> want;
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 4; ++j) {
        double s = 0;
        for (int64_t k = 0; k < 5; ++k) s += a_store.at({n, k, i}) * b.at({0, k, j});
        want.push_back(s);
      }
  check_close(values(c), want);
  check_close(values(matmul(a, b)), want);  // batch broadcast without an explicit expand
  // f32 through the same path
  check_close(values(matmul(a.to(DType::f32), b.to(DType::f32))), want, 1e-5);
  // k = 0 gives zeros; mismatched inner dims are refused
  BOOST_TEST(values(matmul(Tensor::zeros({2, 0}), Tensor::zeros({0, 3}))) == std::vector<double>(6, 0.0));
  BOOST_CHECK_THROW(matmul(Tensor::zeros({2, 3}), Tensor::zeros({4, 3})), Error);
}

BOOST_AUTO_TEST_CASE(softmax_values_along_a_middle_dim) {
  const Tensor x = random_f64({2, 3, 4}, 3);
  const Tensor y = softmax(x, 1), ly = log_softmax(x, 1);
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t k = 0; k < 4; ++k) {
      double z = 0;
      for (int64_t j = 0; j < 3; ++j) z += std::exp(x.at({i, j, k}));
      for (int64_t j = 0; j < 3; ++j) {
        BOOST_TEST(std::abs(y.at({i, j, k}) - std::exp(x.at({i, j, k})) / z) < 1e-14);
        BOOST_TEST(std::abs(ly.at({i, j, k}) - (x.at({i, j, k}) - std::log(z))) < 1e-14);
      }
    }
  // large logits stay finite
  const Tensor big = f64({1000, 0, -1000}, {3});
  check_close(values(softmax(big)), {1, 0, 0});
  check_close(values(log_softmax(big)), {0, -1000, -2000});
}

BOOST_AUTO_TEST_CASE(reduction_values) {
  const Tensor x = f64({1, 2, 3, 4, 6, 8}, {2, 3});
  check_close(values(sum(x, {0})), {5, 8, 11});
  check_close(values(sum(x, {1}, true)), {6, 18});
  BOOST_TEST(sum(x, {1}, true).shape() == (Shape{2, 1}));
  check_close(values(mean(x)), {4});
  // var: row 0 has mean 2 and squared deviations 1+0+1 = 2; row 1 mean 6, 4+0+4 = 8
  check_close(values(var(x, {1}, 0)), {2.0 / 3, 8.0 / 3});
  check_close(values(var(x, {1}, 1)), {1, 4});
  check_close(values(var(x.t(), {0}, 1, true)), {1, 4});
  check_close(values(max(x, {0})), {4, 6, 8});
  check_close(values(max(x.t(), {1})), {4, 6, 8});
  BOOST_TEST(values(argmax(x, 1)) == (std::vector<double>{2, 2}));
  BOOST_CHECK_THROW(sum(x, {0, 0}), Error);
  BOOST_CHECK_THROW(sum(x, {2}), Error);
}

BOOST_AUTO_TEST_CASE(max_ties_split_the_gradient) {
  // As PyTorch's amax: the entries that tie for the maximum share its gradient equally.
  Tensor x = f64({1, 3, 3, 2, 5, 0}, {2, 3});
  x.requires_grad_();
  sum(max(x, {1})).backward();
  BOOST_TEST(values(x.grad()) == (std::vector<double>{0, 0.5, 0.5, 0, 1, 0}));
  Tensor y = f64({2, 2, 2, 2}, {4});
  y.requires_grad_();
  max(y).backward();
  BOOST_TEST(values(y.grad()) == std::vector<double>(4, 0.25));
}

BOOST_AUTO_TEST_CASE(shape_op_values) {
  const Tensor a = f64({1, 2, 3, 4}, {2, 2}), b = f64({5, 6}, {1, 2});
  BOOST_TEST(values(concat({a, b}, 0)) == (std::vector<double>{1, 2, 3, 4, 5, 6}));
  BOOST_TEST(values(concat({a, b.t()}, 1)) == (std::vector<double>{1, 2, 5, 3, 4, 6}));
  const Tensor s = stack({a, a * 10.0}, 1);  // [2, 2, 2]
  BOOST_TEST(values(s) == (std::vector<double>{1, 2, 10, 20, 3, 4, 30, 40}));
  BOOST_TEST(values(stack({a.t(), a}, 0).select(0, 0)) == (std::vector<double>{1, 3, 2, 4}));
  BOOST_CHECK_THROW(concat({a, f64({1, 2, 3}, {1, 3})}, 0), Error);
  BOOST_CHECK_THROW(stack({a, b}, 0), Error);
  BOOST_TEST(values(slice(Tensor::arange(0, 10, 1, DType::f64), 0, -7, 10, 3)) == (std::vector<double>{3, 6, 9}));
}

BOOST_AUTO_TEST_SUITE_END()
