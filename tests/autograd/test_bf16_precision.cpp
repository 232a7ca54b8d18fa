// The bf16 matrix-product precision (kernels/gemm.h set_matmul_precision, train.precision) seen
// from the ops: Linear, convolution and attention products read bf16 operands and sum in fp32,
// forward and backward; biases, norms and the losses' own products (contrastive logits, VQ
// distances) stay fp32. The references are the fp32 ops fed operands already rounded to bf16:
// equal to fp32 summation error where the op is one product, close where it chains several.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstring>

#include "autograd/ops.h"
#include "autograd/random.h"
#include "kernels/bf16.h"
#include "kernels/gemm.h"
#include "tests/support/compare_helpers.h"

using namespace tessera;
using test::max_abs_diff;

namespace {

// Sets the precision for one scope and restores fp32 after it (also when a check throws).
struct PrecisionScope {
  explicit PrecisionScope(kernels::MatmulPrecision p) { kernels::set_matmul_precision(p); }
  ~PrecisionScope() { kernels::set_matmul_precision(kernels::MatmulPrecision::f32); }
};

Tensor random_f32(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  return uniform(shape, -1, 1, gen, DType::f32);
}

// A copy with every element rounded to the nearest bf16.
Tensor rounded(const Tensor& t) {
  std::vector<float> v = t.to_vector<float>();
  for (float& x : v) x = kernels::round_to_bf16(x);
  return Tensor::from_vector(v, t.shape());
}

struct LinearResult {
  Tensor y, dx, dw, db;
};

LinearResult linear_with_grads(const Tensor& x0, const Tensor& w0, const Tensor& b0, const Tensor& dy) {
  Tensor x = x0.detach().requires_grad_(), w = w0.detach().requires_grad_(), b = b0.detach().requires_grad_();
  Tensor y = fused_linear(x, w, b);
  y.backward(dy);
  return {y.detach(), x.grad(), w.grad(), b.grad()};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(bf16_precision)

BOOST_AUTO_TEST_CASE(linear_forward_and_backward_read_bf16_operands) {
  // y = x W^T + b, dx = dy W, dW = dy^T x: each one product, so bf16 mode equals fp32 on rounded
  // operands (to summation error); db = sum dy is not a product and stays exact fp32.
  const Tensor x = random_f32({37, 50}, 1), w = random_f32({45, 50}, 2), b = random_f32({45}, 3),
               dy = random_f32({37, 45}, 4);
  const LinearResult full = linear_with_grads(x, w, b, dy);
  const LinearResult on_rounded = linear_with_grads(rounded(x), rounded(w), b, dy);
  const LinearResult on_rounded_dy = linear_with_grads(rounded(x), rounded(w), b, rounded(dy));
  LinearResult half;
  {
    PrecisionScope bf16(kernels::MatmulPrecision::bf16);
    half = linear_with_grads(x, w, b, dy);
  }
  BOOST_TEST(max_abs_diff(half.y, on_rounded.y) < 1e-5);
  BOOST_TEST(max_abs_diff(half.dx, on_rounded_dy.dx) < 1e-5);
  BOOST_TEST(max_abs_diff(half.dw, on_rounded_dy.dw) < 1e-5);
  BOOST_TEST(max_abs_diff(half.db, full.db) == 0.0);
  // ... and bf16 really changed them: the operands' rounding moves sums of 50 products by ~1e-2.
  BOOST_TEST(max_abs_diff(half.y, full.y) > 1e-3);
  BOOST_TEST(max_abs_diff(half.dw, full.dw) > 1e-3);
}

BOOST_AUTO_TEST_CASE(convolution_reads_bf16_operands) {
  const Tensor x = random_f32({2, 3, 9, 11}, 5), w = random_f32({8, 3, 3, 3}, 6), b = random_f32({8}, 7);
  Conv2dOptions o;
  o.padding = {1, 1};
  const Tensor full = conv2d(x, w, b, o), on_rounded = conv2d(rounded(x), rounded(w), b, o);
  Tensor half;
  {
    PrecisionScope bf16(kernels::MatmulPrecision::bf16);
    half = conv2d(x, w, b, o);
  }
  BOOST_TEST(max_abs_diff(half, on_rounded) < 1e-5);
  BOOST_TEST(max_abs_diff(half, full) > 1e-4);
}

BOOST_AUTO_TEST_CASE(attention_products_in_bf16_softmax_in_fp32) {
  // Q K^T and P V both read bf16: close to fp32 on rounded q, k, v (P is rounded too), not equal
  // to plain fp32.
  const Tensor q = random_f32({2, 3, 17, 16}, 8), k = random_f32({2, 3, 17, 16}, 9), v = random_f32({2, 3, 17, 16}, 10);
  const Tensor full = scaled_dot_product_attention(q, k, v);
  const Tensor on_rounded = scaled_dot_product_attention(rounded(q), rounded(k), rounded(v));
  Tensor half;
  {
    PrecisionScope bf16(kernels::MatmulPrecision::bf16);
    half = scaled_dot_product_attention(q, k, v);
  }
  BOOST_TEST(max_abs_diff(half, on_rounded) < 1e-2);  // P rounded to bf16: ~2^-9 of each weight
  BOOST_TEST(max_abs_diff(half, full) > 1e-4);
  BOOST_TEST(max_abs_diff(half, full) < 5e-2);
}

BOOST_AUTO_TEST_CASE(loss_products_stay_fp32) {
  // The contrastive logits and the VQ distances are products too, but part of a loss or a
  // nearest-neighbour search: bitwise the same in bf16 mode.
  const Tensor a = random_f32({24, 16}, 11), b = random_f32({24, 16}, 12), scale = Tensor::scalar(2.0);
  const Tensor z = random_f32({300, 8}, 13), codebook = random_f32({64, 8}, 14);
  const Tensor loss32 = info_nce_loss(a, b, scale);
  Tensor d32, d16;
  const Tensor codes32 = nearest_code(z, codebook, &d32);
  Tensor loss16, codes16;
  {
    PrecisionScope bf16(kernels::MatmulPrecision::bf16);
    loss16 = info_nce_loss(a, b, scale);
    codes16 = nearest_code(z, codebook, &d16);
  }
  BOOST_TEST(loss16.item() == loss32.item());
  BOOST_TEST(codes16.to_vector<int64_t>() == codes32.to_vector<int64_t>(), boost::test_tools::per_element());
  BOOST_TEST(max_abs_diff(d16, d32) == 0.0);
}

BOOST_AUTO_TEST_SUITE_END()
