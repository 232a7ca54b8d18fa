// The transformer ops (autograd/ops/fused_linear.h, layer_norm.h, attention.h): gradient checks
// (f64) of layer_norm and attention with every mask, their forward against compositions of
// basic ops, and bad input.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>

#include "tests/support/gradcheck_helpers.h"
#include "autograd/error.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "autograd/random.h"

using namespace tessera;
using test::leaf;
using test::expect_ok;

namespace {
double max_abs_diff(const Tensor& a, const Tensor& b) {
  BOOST_REQUIRE(a.shape() == b.shape());
  const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::abs(va[i] - vb[i]));
  return m;
}

// Attention from basic ops: softmax(q k^T * scale + bias) v with an additive -inf/0 bias.
Tensor reference_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& bias) {
  const double scale = 1.0 / std::sqrt(double(q.size(-1)));
  Tensor logits = matmul(q, k.transpose(-2, -1)) * scale;
  if (bias.defined()) logits = logits + bias;
  return matmul(softmax(logits, -1), v);
}

// [B, 1, Tq, Tk] additive mask: -inf where key j is padding for batch b, or j > i when causal.
Tensor mask_bias(int64_t B, int64_t Tq, int64_t Tk, bool causal, const std::vector<uint8_t>& padding) {
  std::vector<double> bias(size_t(B * Tq * Tk), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < Tq; ++i)
      for (int64_t j = 0; j < Tk; ++j)
        if ((causal && j > i) || (!padding.empty() && padding[size_t(b * Tk + j)]))
          bias[size_t((b * Tq + i) * Tk + j)] = -std::numeric_limits<double>::infinity();
  return Tensor::from_vector(bias, {B, 1, Tq, Tk});
}

Tensor u8_mask(const std::vector<uint8_t>& values, const Shape& shape) {
  Tensor m = Tensor::zeros(shape, DType::u8);
  std::copy(values.begin(), values.end(), static_cast<uint8_t*>(m.raw_data()));
  return m;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(transformer_ops)

BOOST_AUTO_TEST_CASE(fused_linear_gradcheck_every_activation) {
  const Tensor x = leaf({2, 3, 4}, 41, -2, 2), w = leaf({5, 4}, 42), b = leaf({5}, 43);
  for (Activation act : {Activation::identity, Activation::relu, Activation::gelu_tanh, Activation::gelu_erf,
                         Activation::silu}) {
    BOOST_TEST_CONTEXT(kernels::activation_name(act)) {
      expect_ok([act](auto& t) { return fused_linear(t[0], t[1], t[2], act); }, {x, w, b});
      expect_ok([act](auto& t) { return fused_linear(t[0], t[1], Tensor(), act); }, {x, w});
    }
  }
  // a transposed input and a transposed weight
  const Tensor xt = leaf({4, 6}, 44), wt = leaf({4, 3}, 45);
  expect_ok([](auto& t) { return fused_linear(t[0].t(), t[1].t(), Tensor(), Activation::gelu_erf); }, {xt, wt});
}

BOOST_AUTO_TEST_CASE(fused_linear_matches_basic_ops) {
  const Tensor x = leaf({3, 2, 6}, 46, -3, 3), w = leaf({4, 6}, 47), b = leaf({4}, 48);
  const Tensor pre = matmul(x, w.t()) + b;
  BOOST_TEST(max_abs_diff(fused_linear(x, w, b), pre) < 1e-12);
  BOOST_TEST(max_abs_diff(fused_linear(x, w, b, Activation::gelu_erf), gelu(pre)) < 1e-12);
  BOOST_TEST(max_abs_diff(fused_linear(x, w, b, Activation::gelu_tanh), gelu(pre, GeluApproximation::tanh)) < 1e-12);
  BOOST_TEST(max_abs_diff(fused_linear(x, w, b, Activation::relu), relu(pre)) < 1e-12);
  BOOST_CHECK_THROW(fused_linear(x, leaf({4, 5}, 49), b), Error);
  BOOST_CHECK_THROW(fused_linear(x, w, leaf({5}, 50)), Error);
  BOOST_CHECK_THROW(fused_linear(x, w.detach().to(DType::f32), Tensor()), Error);
}

BOOST_AUTO_TEST_CASE(layer_norm_gradcheck) {
  const Tensor x = leaf({3, 4, 6}, 1, -2, 2), w = leaf({6}, 2, 0.5, 1.5), b = leaf({6}, 3);
  expect_ok([](auto& t) { return layer_norm(t[0], t[1], t[2], 1e-5); }, {x, w, b});
  expect_ok([](auto& t) { return layer_norm(t[0], Tensor(), Tensor(), 1e-3); }, {x});
  expect_ok([](auto& t) { return layer_norm(t[0], t[1], Tensor()); }, {x, w});
  // a non-contiguous input and rows > one parallel chunk (64 rows) so the partial sums are merged
  const Tensor big = leaf({7, 40, 5}, 4);
  const Tensor w5 = leaf({5}, 5), b5 = leaf({5}, 6);
  expect_ok([](auto& t) { return layer_norm(t[0].transpose(0, 1), t[1], t[2]); }, {big, w5, b5});
}

BOOST_AUTO_TEST_CASE(layer_norm_matches_its_definition) {
  const Tensor x = leaf({5, 9}, 7, -3, 3), w = leaf({9}, 8), b = leaf({9}, 9);
  const Tensor mu = mean(x, {-1}, true);
  const Tensor expected = (x - mu) * rsqrt(var(x, {-1}, 0, true) + 1e-5) * w + b;
  BOOST_TEST(max_abs_diff(layer_norm(x, w, b), expected) < 1e-12);
  // f32 against the f64 result
  const Tensor y32 = layer_norm(x.detach().to(DType::f32), w.detach().to(DType::f32), b.detach().to(DType::f32));
  BOOST_TEST(max_abs_diff(y32.to(DType::f64), expected) < 1e-5);
}

BOOST_AUTO_TEST_CASE(layer_norm_rejects_bad_input) {
  const Tensor x = leaf({2, 4}, 10);
  BOOST_CHECK_THROW(layer_norm(x, leaf({5}, 11), Tensor()), Error);
  BOOST_CHECK_THROW(layer_norm(x, Tensor(), leaf({4, 1}, 12)), Error);
  BOOST_CHECK_THROW(layer_norm(x, Tensor(), Tensor(), 0.0), Error);
  BOOST_CHECK_THROW(layer_norm(Tensor::zeros({2, 0}, DType::f64), Tensor(), Tensor()), Error);
  BOOST_CHECK_THROW(layer_norm(x, Tensor::ones({4}, DType::f32), Tensor()), Error);
}

BOOST_AUTO_TEST_CASE(attention_gradcheck_without_masks) {
  const Tensor q = leaf({2, 2, 3, 4}, 20), k = leaf({2, 2, 5, 4}, 21), v = leaf({2, 2, 5, 3}, 22);
  expect_ok([](auto& t) { return scaled_dot_product_attention(t[0], t[1], t[2]); }, {q, k, v});
}

BOOST_AUTO_TEST_CASE(attention_gradcheck_with_masks) {
  const Tensor q = leaf({2, 2, 4, 3}, 23), k = leaf({2, 2, 4, 3}, 24), v = leaf({2, 2, 4, 3}, 25);
  AttentionOptions causal;
  causal.causal = true;
  expect_ok([causal](auto& t) { return scaled_dot_product_attention(t[0], t[1], t[2], causal); }, {q, k, v});
  AttentionOptions padded;
  padded.key_padding_mask = u8_mask({0, 0, 1, 1, 0, 1, 0, 0}, {2, 4});
  expect_ok([padded](auto& t) { return scaled_dot_product_attention(t[0], t[1], t[2], padded); }, {q, k, v});
  AttentionOptions both = padded;
  both.causal = true;
  both.key_padding_mask = u8_mask({0, 0, 1, 1, 0, 1, 0, 1}, {2, 4});
  expect_ok([both](auto& t) { return scaled_dot_product_attention(t[0], t[1], t[2], both); }, {q, k, v});
}

BOOST_AUTO_TEST_CASE(attention_gradcheck_on_strided_views) {
  // q, k, v sliced out of one [B, T, 3, H, D] tensor, as a fused projection gives them
  const Tensor qkv = leaf({2, 5, 3, 2, 4}, 26);
  expect_ok(
      [](auto& t) {
        const Tensor p = t[0].permute({2, 0, 3, 1, 4});
        return scaled_dot_product_attention(p.select(0, 0), p.select(0, 1), p.select(0, 2));
      },
      {qkv});
}

BOOST_AUTO_TEST_CASE(attention_matches_basic_ops) {
  const Tensor q = leaf({2, 3, 4, 5}, 27, -2, 2), k = leaf({2, 3, 6, 5}, 28, -2, 2), v = leaf({2, 3, 6, 2}, 29);
  BOOST_TEST(max_abs_diff(scaled_dot_product_attention(q, k, v), reference_attention(q, k, v, Tensor())) < 1e-12);
  const std::vector<uint8_t> pad{0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1};
  AttentionOptions o;
  o.causal = true;
  o.key_padding_mask = u8_mask(pad, {2, 6});
  // every query of batch 0 sees key 0; of batch 1, key 1 is the first visible one, so query 0 sees nothing
  const Tensor got = scaled_dot_product_attention(q, k, v, o);
  const Tensor expected = reference_attention(q, k, v, mask_bias(2, 4, 6, true, pad));
  BOOST_TEST(max_abs_diff(got.slice(0, 0, 1), expected.slice(0, 0, 1)) < 1e-12);
  BOOST_TEST(max_abs_diff(got.slice(0, 1, 2).slice(2, 1, 4), expected.slice(0, 1, 2).slice(2, 1, 4)) < 1e-12);
  // the fully masked query has a zero output (PyTorch: NaN) and no gradient flows from it
  BOOST_TEST(max_abs_diff(got.slice(0, 1, 2).slice(2, 0, 1), Tensor::zeros({1, 3, 1, 2}, DType::f64)) == 0.0);
  expect_ok([o](auto& t) { return scaled_dot_product_attention(t[0], t[1], t[2], o); }, {q, k, v});
}

BOOST_AUTO_TEST_CASE(fused_qkv_attention_matches_split_heads) {
  const int64_t B = 2, T = 5, H = 3, D = 2, C = H * D;
  const Tensor qkv = leaf({B, T, 3 * C}, 30, -2, 2);
  AttentionOptions o;
  o.key_padding_mask = u8_mask({0, 0, 0, 1, 1, 0, 0, 0, 0, 0}, {B, T});
  auto split = [=](const Tensor& x) {
    const Tensor p = x.reshape({B, T, 3, H, D}).permute({2, 0, 3, 1, 4});
    return scaled_dot_product_attention(p.select(0, 0), p.select(0, 1), p.select(0, 2), o)
        .transpose(1, 2)
        .reshape({B, T, C});
  };
  BOOST_TEST(max_abs_diff(self_attention_qkv(qkv, H, o), split(qkv)) < 1e-12);
  expect_ok([o](auto& t) { return self_attention_qkv(t[0], 3, o); }, {qkv});
  AttentionOptions causal;
  causal.causal = true;
  expect_ok([causal](auto& t) { return self_attention_qkv(t[0], 3, causal); }, {qkv});
}

BOOST_AUTO_TEST_CASE(attention_f32_agrees_with_f64) {
  const Tensor q = leaf({2, 2, 7, 8}, 31, -2, 2), k = leaf({2, 2, 7, 8}, 32, -2, 2), v = leaf({2, 2, 7, 8}, 33);
  const Tensor ref = scaled_dot_product_attention(q, k, v);
  const Tensor got = scaled_dot_product_attention(q.detach().to(DType::f32), k.detach().to(DType::f32),
                                                  v.detach().to(DType::f32));
  BOOST_TEST(max_abs_diff(got.to(DType::f64), ref) < 1e-5);
}

BOOST_AUTO_TEST_CASE(attention_rejects_bad_input) {
  const Tensor q = leaf({1, 2, 3, 4}, 34);
  BOOST_CHECK_THROW(scaled_dot_product_attention(q, leaf({1, 2, 3, 5}, 35), leaf({1, 2, 3, 4}, 36)), Error);
  BOOST_CHECK_THROW(scaled_dot_product_attention(q, q, leaf({1, 2, 4, 4}, 37)), Error);
  BOOST_CHECK_THROW(scaled_dot_product_attention(leaf({2, 3, 4}, 38), q, q), Error);
  AttentionOptions o;
  o.key_padding_mask = Tensor::zeros({1, 4}, DType::u8);
  BOOST_CHECK_THROW(scaled_dot_product_attention(q, q, q, o), Error);
  o.key_padding_mask = Tensor::zeros({1, 3}, DType::f32);
  BOOST_CHECK_THROW(scaled_dot_product_attention(q, q, q, o), Error);
  BOOST_CHECK_THROW(self_attention_qkv(leaf({1, 3, 10}, 39), 2), Error);
  BOOST_CHECK_THROW(self_attention_qkv(leaf({1, 3, 12}, 40), 3), Error);
}

BOOST_AUTO_TEST_SUITE_END()
