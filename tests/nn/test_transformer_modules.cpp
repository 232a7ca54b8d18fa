// Transformer modules and the ViT: gradient checks in f64 over the input and every parameter,
// timm's parameter names and initialisation, masks, pooling and bad configurations.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <set>

#include "tests/support/compare_helpers.h"
#include "tests/support/gradcheck_helpers.h"
#include "autograd/error.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "autograd/random.h"
#include "nn/layer_norm.h"
#include "nn/conv.h"
#include "nn/cross_attention.h"
#include "nn/dual_token.h"
#include "nn/conv_stem.h"
#include "nn/patch_embed.h"
#include "nn/transformer.h"
#include "nn/vit.h"

using namespace tessera;
using test::leaf;
using namespace tessera::nn;

namespace {
// Turns every parameter and buffer of m into f64 in place (every handle sees the change) and
// gives it random values of a useful size, so that no gradient is trivially zero or one.
std::vector<Tensor> to_f64_random(Module& m, uint64_t seed) {
  Generator gen(seed);
  std::vector<Tensor> params;
  for (auto& [name, t] : m.state()) {
    const Tensor c = uniform(t.shape(), -0.6, 0.6, gen, DType::f64);
    TensorImpl& impl = t.impl();
    impl.storage = c.storage();
    impl.dtype = DType::f64;
    impl.strides = c.strides();
    impl.offset = c.offset();
    if (t.requires_grad()) params.push_back(t);
  }
  return params;
}

// Checks d(module(x))/d(x and every parameter).
void expect_module_ok(const std::function<Tensor(const Tensor&)>& forward, const Tensor& x,
                      const std::vector<Tensor>& params) {
  std::vector<Tensor> inputs{x};
  inputs.insert(inputs.end(), params.begin(), params.end());
  const GradcheckResult r = gradcheck([&](const std::vector<Tensor>& in) { return forward(in[0]); }, inputs);
  BOOST_TEST(r.ok, r.message);
}

std::vector<std::string> names_of(const Module& m) {
  std::vector<std::string> names;
  for (auto& [name, t] : m.named_parameters()) names.push_back(name);
  return names;
}

Tensor u8_mask(const std::vector<uint8_t>& values, const Shape& shape) {
  Tensor m = Tensor::zeros(shape, DType::u8);
  std::copy(values.begin(), values.end(), static_cast<uint8_t*>(m.raw_data()));
  return m;
}

ViTConfig tiny_vit(ViTConfig::Pooling pooling, ViTConfig::PosEmbed pos = ViTConfig::PosEmbed::learned) {
  ViTConfig c;
  c.image_size = 4;
  c.patch_size = 2;
  c.channels = 2;
  c.width = 4;
  c.depth = 2;
  c.heads = 2;
  c.mlp_ratio = 1.5;
  c.num_classes = 3;
  c.pooling = pooling;
  c.pos_embed = pos;
  return c;
}

Tensor flatten_output(const ViTOutput& o) {
  std::vector<Tensor> parts{o.tokens.reshape({-1}), o.pooled.reshape({-1})};
  if (o.logits.defined()) parts.push_back(o.logits.reshape({-1}));
  return concat(parts, 0);
}
}  // namespace

BOOST_AUTO_TEST_SUITE(transformer_modules)

BOOST_AUTO_TEST_CASE(layer_norm_module_gradcheck) {
  LayerNorm ln(5);
  const auto params = to_f64_random(ln, 1);
  expect_module_ok([&](const Tensor& x) { return ln.forward(x); }, leaf({2, 3, 5}, 2), params);
  BOOST_CHECK_THROW(ln.forward(leaf({2, 4}, 3)), Error);
  BOOST_CHECK_THROW(LayerNorm(0), Error);
}

BOOST_AUTO_TEST_CASE(attention_module_gradcheck_with_and_without_masks) {
  Generator gen(4);
  MultiHeadSelfAttention plain(6, 2, {}, gen);
  const auto params = to_f64_random(plain, 5);
  const Tensor x = leaf({2, 4, 6}, 6);
  expect_module_ok([&](const Tensor& in) { return plain.forward(in); }, x, params);
  const Tensor pad = u8_mask({0, 0, 0, 1, 0, 1, 1, 0}, {2, 4});
  expect_module_ok([&](const Tensor& in) { return plain.forward(in, pad); }, x, params);

  MultiHeadSelfAttention causal(6, 3, {.qkv_bias = false, .causal = true}, gen);
  const auto cparams = to_f64_random(causal, 7);
  BOOST_TEST(names_of(causal) == (std::vector<std::string>{"qkv.weight", "proj.weight", "proj.bias"}));
  expect_module_ok([&](const Tensor& in) { return causal.forward(in); }, x, cparams);
  BOOST_CHECK_THROW(MultiHeadSelfAttention(6, 4, {}, gen), Error);
  BOOST_CHECK_THROW(plain.forward(leaf({2, 4, 5}, 8)), Error);
}

BOOST_AUTO_TEST_CASE(causal_attention_ignores_the_future) {
  Generator gen(9);
  MultiHeadSelfAttention attn(4, 2, {.causal = true}, gen);
  to_f64_random(attn, 1);
  Tensor x = leaf({1, 5, 4}, 10);
  const Tensor y = attn.forward(x).detach();
  Tensor changed = x.detach().clone();
  static_cast<double*>(changed.raw_data())[4 * 4 + 1] += 1.0;  // token 4 only
  const Tensor y2 = attn.forward(changed).detach();
  BOOST_TEST(allclose(y.slice(1, 0, 4), y2.slice(1, 0, 4), 0, 0));
  BOOST_TEST(!allclose(y.slice(1, 4, 5), y2.slice(1, 4, 5)));
}

BOOST_AUTO_TEST_CASE(padding_keys_have_no_influence) {
  Generator gen(11);
  MultiHeadSelfAttention attn(4, 2, {}, gen);
  to_f64_random(attn, 1);
  const Tensor x = leaf({1, 4, 4}, 12).detach();
  const Tensor pad = u8_mask({0, 0, 1, 0}, {1, 4});
  Tensor changed = x.clone();
  static_cast<double*>(changed.raw_data())[2 * 4] += 3.0;  // token 2, which is padding
  const Tensor y = attn.forward(x, pad), y2 = attn.forward(changed, pad);
  for (int64_t t : {0, 1, 3}) BOOST_TEST(allclose(y.select(1, t), y2.select(1, t), 0, 0));
}

BOOST_AUTO_TEST_CASE(mlp_and_block_gradcheck) {
  Generator gen(13);
  Mlp mlp(4, 7, 3, 0.0, gen);
  const auto mparams = to_f64_random(mlp, 14);
  BOOST_TEST(names_of(mlp) == (std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}));
  expect_module_ok([&](const Tensor& x) { return mlp.forward(x); }, leaf({2, 3, 4}, 15), mparams);

  Block block(4, 2, {.mlp_ratio = 2}, gen);
  const auto bparams = to_f64_random(block, 16);
  expect_module_ok([&](const Tensor& x) { return block.forward(x); }, leaf({2, 3, 4}, 17), bparams);
  BOOST_TEST(names_of(block) == (std::vector<std::string>{"norm1.weight", "norm1.bias", "attn.qkv.weight",
                                                          "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias",
                                                          "norm2.weight", "norm2.bias", "mlp.fc1.weight",
                                                          "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"}));
}

BOOST_AUTO_TEST_CASE(drop_path_acts_in_training_only) {
  Generator gen(18);
  Block block(4, 2, {.drop = 0.0, .drop_path = 0.5}, gen);
  to_f64_random(block, 1);
  const Tensor x = leaf({64, 3, 4}, 19).detach();
  block.eval();
  const Tensor a = block.forward(x), b = block.forward(x);
  BOOST_TEST(allclose(a, b, 0, 0));
  block.train();
  const Tensor c = block.forward(x);
  // with p = 0.5 per branch and 64 samples, some sample keeps a branch the eval pass scales differently
  BOOST_TEST(!allclose(a, c));
}

BOOST_AUTO_TEST_CASE(patch_embed_is_a_strided_convolution) {
  Generator gen(20);
  PatchEmbed pe(4, 2, 3, 5, gen);
  BOOST_TEST(pe.proj->weight.shape() == (Shape{5, 3, 2, 2}));
  BOOST_TEST(names_of(pe) == (std::vector<std::string>{"proj.weight", "proj.bias"}));
  const auto params = to_f64_random(pe, 21);
  const Tensor x = leaf({2, 3, 4, 4}, 22);
  // token (r, c) of image b, channel o = bias[o] + sum_{i,u,v} w[o,i,u,v] * x[b,i,2r+u,2c+v]
  const Tensor y = pe.forward(x);
  BOOST_TEST(y.shape() == (Shape{2, 4, 5}));
  double worst = 0;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t r = 0; r < 2; ++r)
      for (int64_t c = 0; c < 2; ++c)
        for (int64_t o = 0; o < 5; ++o) {
          double s = pe.proj->bias.at({o});
          for (int64_t i = 0; i < 3; ++i)
            for (int64_t u = 0; u < 2; ++u)
              for (int64_t v = 0; v < 2; ++v) s += pe.proj->weight.at({o, i, u, v}) * x.at({b, i, 2 * r + u, 2 * c + v});
          worst = std::max(worst, std::abs(s - y.at({b, r * 2 + c, o})));
        }
  BOOST_TEST(worst < 1e-12);
  expect_module_ok([&](const Tensor& in) { return pe.forward(in); }, x, params);
  BOOST_CHECK_THROW(PatchEmbed(5, 2, 1, 4, gen), Error);
  BOOST_CHECK_THROW(pe.forward(leaf({2, 3, 4, 6}, 23)), Error);
}

BOOST_AUTO_TEST_CASE(cross_attention_is_per_head_softmax_over_the_memory) {
  Generator gen(50);
  MultiHeadCrossAttention xa(6, 4, 2, gen);  // dim 6 in 2 heads of 3; memory width 4
  BOOST_TEST(names_of(xa) == (std::vector<std::string>{"q.weight", "q.bias", "kv.weight", "kv.bias", "proj.weight",
                                                       "proj.bias"}));
  const auto params = to_f64_random(xa, 51);
  const Tensor x = leaf({2, 3, 6}, 52), memory = leaf({2, 5, 4}, 53);
  const Tensor y = xa.forward(x, memory);
  BOOST_TEST(y.shape() == (Shape{2, 3, 6}));
  // By hand: q = x Wq^T + bq, k | v = memory Wkv^T + bkv, per head softmax(q k^T / sqrt(3)) v, then proj.
  const Tensor q = xa.q->forward(x), kv = xa.kv->forward(memory);
  double worst = 0;
  for (int64_t b = 0; b < 2; ++b) {
    std::vector<double> merged(size_t(3 * 6));
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t i = 0; i < 3; ++i) {
        std::vector<double> logits(5);
        double top = -1e300, total = 0;
        for (int64_t j = 0; j < 5; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < 3; ++e) dot += q.at({b, i, h * 3 + e}) * kv.at({b, j, h * 3 + e});
          logits[size_t(j)] = dot / std::sqrt(3.0), top = std::max(top, logits[size_t(j)]);
        }
        for (double& l : logits) total += (l = std::exp(l - top));
        for (int64_t e = 0; e < 3; ++e) {
          double out = 0;
          for (int64_t j = 0; j < 5; ++j) out += logits[size_t(j)] / total * kv.at({b, j, 6 + h * 3 + e});
          merged[size_t(i * 6 + h * 3 + e)] = out;
        }
      }
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t o = 0; o < 6; ++o) {
        double v = xa.proj->bias.at({o});
        for (int64_t c = 0; c < 6; ++c) v += xa.proj->weight.at({o, c}) * merged[size_t(i * 6 + c)];
        worst = std::max(worst, std::abs(v - y.at({b, i, o})));
      }
  }
  BOOST_TEST(worst < 1e-12);
  std::vector<Tensor> inputs{x, memory};
  inputs.insert(inputs.end(), params.begin(), params.end());
  test::expect_ok([&](const std::vector<Tensor>& in) { return xa.forward(in[0], in[1]); }, inputs);
  BOOST_CHECK_THROW(xa.forward(x, leaf({2, 5, 3}, 54)), Error);  // memory of the wrong width
  BOOST_CHECK_THROW(xa.forward(x, leaf({3, 5, 4}, 55)), Error);  // another batch
  BOOST_CHECK_THROW(MultiHeadCrossAttention(6, 4, 4, gen), Error);
}

BOOST_AUTO_TEST_CASE(gated_cross_attention_starts_as_the_identity_and_opens) {
  Generator gen(56);
  GatedCrossAttentionBlock block(6, 4, 2, 2.0, 1e-5, gen);
  const auto names = names_of(block);
  BOOST_TEST(std::count(names.begin(), names.end(), "gate_attn") == 1);
  BOOST_TEST(std::count(names.begin(), names.end(), "gate_mlp") == 1);
  BOOST_TEST(block.gate_attn.item() == 0.0);
  BOOST_TEST(block.gate_mlp.item() == 0.0);
  // At birth (gates 0) the layer passes h through exactly, whatever the memory, and the gates still
  // get a gradient (d tanh(g)/dg = 1 at 0), so they can open.
  Tensor h = uniform({2, 3, 6}, -1, 1, gen);
  h.requires_grad_();
  const Tensor memory = uniform({2, 5, 4}, -1, 1, gen);
  const Tensor y = block.forward(h, memory);
  BOOST_TEST(test::max_abs_diff(y, h) == 0.0);
  sum(y * y).backward();
  BOOST_TEST(std::abs(block.gate_attn.grad().item()) > 1e-6);
  BOOST_TEST(std::abs(block.gate_mlp.grad().item()) > 1e-6);
  // Open, in f64: every input and parameter, gates included, passes the gradient check.
  const auto params = to_f64_random(block, 57);
  const Tensor x = leaf({2, 3, 6}, 58), m = leaf({2, 5, 4}, 59);
  std::vector<Tensor> inputs{x, m};
  inputs.insert(inputs.end(), params.begin(), params.end());
  test::expect_ok([&](const std::vector<Tensor>& in) { return block.forward(in[0], in[1]); }, inputs);
}

BOOST_AUTO_TEST_CASE(dual_tokens_are_a_prompt_guided_context_and_pooled_content) {
  Generator gen(60);
  DualTokenCompressor dual(4, 6, 4, 2, gen);  // features of width 4 on a 4x4 grid, LM width 6, 2x2 content
  BOOST_TEST(dual.tokens() == 5);
  BOOST_TEST(names_of(dual) == (std::vector<std::string>{"context_query.weight", "context_query.bias",
                                                         "context_projector.weight", "context_projector.bias",
                                                         "content_projector.weight", "content_projector.bias"}));
  BOOST_TEST(sum(abs(dual.context_projector->weight)).item() == 0.0);  // zero at birth, as the prefix projector
  const auto params = to_f64_random(dual, 61);
  const Tensor x = leaf({2, 16, 4}, 62), text = leaf({2, 5, 6}, 63);
  const std::vector<int64_t> lengths{3, 5};
  const Tensor y = dual.forward(x, text, lengths);
  BOOST_TEST(y.shape() == (Shape{2, 5, 6}));
  // By hand. Context: per prompt token, softmax over the 16 features of q.x / 2, averaged; content:
  // the four 2x2 blocks of the grid, row-major.
  const Tensor q = dual.context_query->forward(text);
  double worst = 0;
  for (int64_t b = 0; b < 2; ++b) {
    const int64_t p = b == 0 ? 3 : 5;
    std::vector<double> context(4, 0.0);
    for (int64_t i = 0; i < p; ++i) {
      std::vector<double> w(16);
      double top = -1e300, total = 0;
      for (int64_t n = 0; n < 16; ++n) {
        double dot = 0;
        for (int64_t e = 0; e < 4; ++e) dot += q.at({b, i, e}) * x.at({b, n, e});
        w[size_t(n)] = dot / 2.0, top = std::max(top, w[size_t(n)]);
      }
      for (double& v : w) total += (v = std::exp(v - top));
      for (int64_t e = 0; e < 4; ++e)
        for (int64_t n = 0; n < 16; ++n) context[size_t(e)] += w[size_t(n)] / total * x.at({b, n, e}) / double(p);
    }
    auto projected = [&](const Linear& l, const std::vector<double>& v, int64_t o) {
      double s = l.bias.at({o});
      for (int64_t e = 0; e < 4; ++e) s += l.weight.at({o, e}) * v[size_t(e)];
      return s;
    };
    for (int64_t o = 0; o < 6; ++o) worst = std::max(worst, std::abs(projected(*dual.context_projector, context, o) - y.at({b, 0, o})));
    for (int64_t br = 0; br < 2; ++br)
      for (int64_t bc = 0; bc < 2; ++bc) {
        std::vector<double> block(4, 0.0);
        for (int64_t r = 2 * br; r < 2 * br + 2; ++r)
          for (int64_t c = 2 * bc; c < 2 * bc + 2; ++c)
            for (int64_t e = 0; e < 4; ++e) block[size_t(e)] += x.at({b, r * 4 + c, e}) / 4.0;
        for (int64_t o = 0; o < 6; ++o)
          worst = std::max(worst, std::abs(projected(*dual.content_projector, block, o) - y.at({b, 1 + br * 2 + bc, o})));
      }
  }
  BOOST_TEST(worst < 1e-12);
  // What follows the prompt never reaches the tokens (the suffix must stay causal).
  Tensor later = text.detach().clone();
  later.slice(1, 3, 5).select(0, 0).fill_(7.0);
  BOOST_TEST(test::max_abs_diff(dual.forward(x, later, lengths).select(0, 0), y.select(0, 0)) == 0.0);
  BOOST_TEST(test::max_abs_diff(dual.forward(x, later, lengths).select(0, 1), y.select(0, 1)) == 0.0);
  std::vector<Tensor> inputs{x, text};
  inputs.insert(inputs.end(), params.begin(), params.end());
  test::expect_ok([&](const std::vector<Tensor>& in) { return dual.forward(in[0], in[1], lengths); }, inputs);
  BOOST_CHECK_THROW(DualTokenCompressor(4, 6, 4, 3, gen), Error);  // 3 does not divide the grid
  BOOST_CHECK_THROW(dual.forward(x, text, {0, 5}), Error);
  BOOST_CHECK_THROW(dual.forward(x, text, {3, 6}), Error);
  BOOST_CHECK_THROW(dual.forward(x, text, {3}), Error);
  BOOST_CHECK_THROW(dual.forward(leaf({2, 9, 4}, 64), text, lengths), Error);
}

BOOST_AUTO_TEST_CASE(conv_stem_is_halving_convolutions_with_gelu_between) {
  Generator gen(40);
  ConvPatchStem stem(8, 4, 2, 40, gen);  // 8x8 -> 4x4 -> 2x2: two convolutions, 2 -> 32 -> 40 channels
  BOOST_TEST(names_of(stem) == (std::vector<std::string>{"proj.0.weight", "proj.0.bias", "proj.2.weight", "proj.2.bias"}));
  BOOST_TEST(stem.num_patches() == 4);
  const auto params = to_f64_random(stem, 41);
  const auto& first = dynamic_cast<Conv2d&>(*(*stem.proj)[0]);
  const auto& last = dynamic_cast<Conv2d&>(*(*stem.proj)[2]);
  BOOST_TEST(first.weight.shape() == (Shape{32, 2, 3, 3}));
  BOOST_TEST(last.weight.shape() == (Shape{40, 32, 3, 3}));
  const Tensor x = leaf({3, 2, 8, 8}, 42);
  // Against the ops themselves: conv (stride 2, pad 1) -> exact GELU -> conv, then token (r, c) of
  // image b is the feature column at (r, c).
  Conv2dOptions halve;
  halve.stride = {2, 2};
  halve.padding = {1, 1};
  const Tensor f = conv2d(gelu(conv2d(x, first.weight, first.bias, halve)), last.weight, last.bias, halve);
  const Tensor y = stem.forward(x);
  BOOST_TEST(y.shape() == (Shape{3, 4, 40}));
  double worst = 0;
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t r = 0; r < 2; ++r)
      for (int64_t c = 0; c < 2; ++c)
        for (int64_t o = 0; o < 40; ++o) worst = std::max(worst, std::abs(f.at({b, o, r, c}) - y.at({b, r * 2 + c, o})));
  BOOST_TEST(worst < 1e-12);
  expect_module_ok([&](const Tensor& in) { return stem.forward(in); }, x, params);
  // Channels double from 32 and stop at dim; the last convolution always makes dim.
  BOOST_TEST(ConvPatchStem::channels_out(0, 3, 192) == 32);
  BOOST_TEST(ConvPatchStem::channels_out(1, 3, 192) == 64);
  BOOST_TEST(ConvPatchStem::channels_out(2, 3, 192) == 192);
  BOOST_TEST(ConvPatchStem::channels_out(1, 4, 48) == 48);
  BOOST_CHECK_THROW(ConvPatchStem(12, 6, 1, 4, gen), Error);  // not a power of two
  BOOST_CHECK_THROW(ConvPatchStem(8, 1, 1, 4, gen), Error);   // nothing to halve
  BOOST_CHECK_THROW(ConvPatchStem(12, 8, 1, 4, gen), Error);  // does not divide the image
  BOOST_CHECK_THROW(stem.forward(leaf({3, 2, 8, 6}, 43)), Error);
}

BOOST_AUTO_TEST_CASE(vit_with_a_conv_stem_gradcheck_and_config_checks) {
  for (auto pooling : {ViTConfig::Pooling::cls, ViTConfig::Pooling::avg}) {
    Generator gen(44);
    ViTConfig c = tiny_vit(pooling);
    c.stem = ViTConfig::Stem::conv;
    VisionTransformer vit(c, gen);
    BOOST_TEST(vit.num_patches() == 4);
    const auto names = names_of(vit);
    BOOST_TEST(std::count(names.begin(), names.end(), "patch_embed.proj.0.weight") == 1);
    BOOST_TEST(std::count(names.begin(), names.end(), "patch_embed.proj.weight") == 0);
    const auto params = to_f64_random(vit, 45);
    expect_module_ok([&](const Tensor& x) { return flatten_output(vit.forward(x)); }, leaf({2, 2, 4, 4}, 46), params);
  }
  ViTConfig bad = tiny_vit(ViTConfig::Pooling::avg);
  bad.stem = ViTConfig::Stem::conv;
  bad.image_size = 6;
  bad.patch_size = 3;
  BOOST_CHECK_THROW(bad.validate(), Error);
  bad.stem = ViTConfig::Stem::patch;
  BOOST_CHECK_NO_THROW(bad.validate());
}

BOOST_AUTO_TEST_CASE(vit_gradcheck_all_pooling_and_position_modes) {
  for (auto pooling : {ViTConfig::Pooling::cls, ViTConfig::Pooling::avg})
    for (auto pos : {ViTConfig::PosEmbed::learned, ViTConfig::PosEmbed::sincos}) {
      Generator gen(24);
      VisionTransformer vit(tiny_vit(pooling, pos), gen);
      const auto params = to_f64_random(vit, 25);
      if (pos == ViTConfig::PosEmbed::sincos) {
        // to_f64_random also randomised the fixed table; put the real one back
        const Tensor table = sincos_position_embedding_2d(2, 4).to(DType::f64).reshape({1, 4, 4});
        Tensor p = vit.pos_embed;
        p.copy_(pooling == ViTConfig::Pooling::cls ? concat({Tensor::zeros({1, 1, 4}, DType::f64), table}, 1) : table);
      }
      expect_module_ok([&](const Tensor& x) { return flatten_output(vit.forward(x)); }, leaf({2, 2, 4, 4}, 26),
                       params);
    }
}

BOOST_AUTO_TEST_CASE(vit_names_shapes_and_outputs_follow_timm) {
  Generator gen(27);
  ViTConfig c = tiny_vit(ViTConfig::Pooling::cls);
  VisionTransformer vit(c, gen);
  const auto names = names_of(vit);
  const std::vector<std::string> head{"cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias",
                                      "blocks.0.norm1.weight"};
  BOOST_TEST(std::vector<std::string>(names.begin(), names.begin() + 5) == head);
  const std::set<std::string> all(names.begin(), names.end());
  for (const char* n : {"blocks.1.attn.qkv.weight", "blocks.1.mlp.fc2.bias", "norm.weight", "head.weight", "head.bias"})
    BOOST_TEST(all.count(n) == 1, n);
  BOOST_TEST(vit.pos_embed.shape() == (Shape{1, 5, 4}));
  BOOST_TEST(vit.blocks->items[0]->mlp->fc1->weight.shape() == (Shape{6, 4}));

  const ViTOutput out = vit.forward(Tensor::zeros({3, 2, 4, 4}));
  BOOST_TEST(out.tokens.shape() == (Shape{3, 4, 4}));
  BOOST_TEST(out.pooled.shape() == (Shape{3, 4}));
  BOOST_TEST(out.logits.shape() == (Shape{3, 3}));

  c.num_classes = 0;
  c.pooling = ViTConfig::Pooling::avg;
  VisionTransformer headless(c, gen);
  BOOST_TEST(!headless.head);
  BOOST_TEST(!headless.cls_token.defined());
  const ViTOutput h = headless.forward(Tensor::ones({3, 2, 4, 4}));
  BOOST_TEST(!h.logits.defined());
  BOOST_TEST(allclose(h.pooled, mean(h.tokens, {1}), 1e-6, 1e-7));
}

BOOST_AUTO_TEST_CASE(vit_classifier_is_the_same_tree_as_images_to_logits) {
  Generator gen(30);
  ViTConfig c = tiny_vit(ViTConfig::Pooling::cls);
  c.dropout = 0.5;
  ViTClassifier classifier(c, gen);
  const auto names = names_of(classifier);
  BOOST_TEST(names == names_of(classifier.vit()));
  BOOST_TEST(classifier.parameter_count() == classifier.vit().parameter_count());
  const Tensor x = Tensor::ones({2, 2, 4, 4});
  classifier.eval();  // must reach the ViT's own dropout, or the two calls below would differ
  BOOST_TEST(!classifier.vit().is_training());
  BOOST_TEST(allclose(classifier.forward(x), classifier.vit().forward(x).logits, 0, 0));
  c.num_classes = 0;
  c.pos_embed = ViTConfig::PosEmbed::sincos;
  ViTClassifier headless(c, gen);
  headless.eval();
  BOOST_TEST(names_of(headless) == names_of(headless.vit()));
  BOOST_TEST(headless.state().size() == headless.vit().state().size());
  BOOST_TEST(allclose(headless.forward(x), headless.vit().forward(x).pooled, 0, 0));
}

BOOST_AUTO_TEST_CASE(vit_initialisation_follows_timm) {
  Generator gen(28);
  ViTConfig c;  // the recipe's size: 28x28, patch 4, width 192, depth 6
  VisionTransformer vit(c, gen);
  for (auto& [name, p] : vit.named_parameters()) {
    const auto v = p.to_vector<double>();
    double lo = 1e9, hi = -1e9, sq = 0;
    for (double e : v) lo = std::min(lo, e), hi = std::max(hi, e), sq += e * e;
    const double rms = std::sqrt(sq / double(v.size()));
    const bool is_norm = name.find("norm") != std::string::npos;
    if (is_norm && name.ends_with(".weight")) {
      BOOST_TEST((lo == 1.0 && hi == 1.0), name);
    } else if (name.ends_with(".bias") && name.find("patch_embed") == std::string::npos) {
      BOOST_TEST((lo == 0.0 && hi == 0.0), name);
    } else if (name == "cls_token") {
      BOOST_TEST(std::abs(rms - 1e-6) < 3e-7, name << " rms " << rms);  // timm: normal(0, 1e-6)
    } else if (name.find("patch_embed") == std::string::npos) {
      // truncated normal(0, 0.02) on [-2, 2]: the cut is 100 sigma away, so the rms is ~0.02
      BOOST_TEST(std::abs(rms - 0.02) < 0.002, name << " rms " << rms);
    }
  }
  BOOST_TEST(vit.parameter_count() > 2'600'000);
  BOOST_TEST(vit.parameter_count() < 2'800'000);
}

BOOST_AUTO_TEST_CASE(sincos_table_values) {
  const Tensor t = sincos_position_embedding_2d(3, 8);
  BOOST_TEST(t.shape() == (Shape{9, 8}));
  // token (row 1, col 2): channels 0..1 sin(2*w_k), 2..3 cos(2*w_k), 4..5 sin(1*w_k), 6..7 cos(1*w_k), w = 1, 1e-2
  const int64_t tok = 1 * 3 + 2;
  BOOST_TEST(std::abs(t.at({tok, 1}) - std::sin(2 * 0.01)) < 1e-6);
  BOOST_TEST(std::abs(t.at({tok, 2}) - std::cos(2.0)) < 1e-6);
  BOOST_TEST(std::abs(t.at({tok, 4}) - std::sin(1.0)) < 1e-6);
  BOOST_TEST(std::abs(t.at({tok, 7}) - std::cos(0.01)) < 1e-6);
  BOOST_CHECK_THROW(sincos_position_embedding_2d(3, 6), Error);
}

BOOST_AUTO_TEST_CASE(vit_config_errors_name_the_field) {
  Generator gen(29);
  ViTConfig c;
  c.image_size = 30;
  try {
    VisionTransformer vit(c, gen);
    BOOST_FAIL("expected an error");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find("patch_size") != std::string::npos, e.what());
  }
  c = ViTConfig{};
  c.heads = 5;
  BOOST_CHECK_THROW(VisionTransformer(c, gen), Error);
  c = ViTConfig{};
  c.drop_path = 1.0;
  BOOST_CHECK_THROW(VisionTransformer(c, gen), Error);
}

// The attention weights a ViT reports (for attention rollout) are the ones its blocks use: with one
// head, weights @ v through the output projection is the block's attention output; rows sum to 1.
BOOST_AUTO_TEST_CASE(vit_attention_weights_are_the_ones_its_blocks_use) {
  for (const auto pooling : {ViTConfig::Pooling::cls, ViTConfig::Pooling::avg}) {
    Generator gen(9);
    ViTConfig c = tiny_vit(pooling);
    c.heads = 1;
    VisionTransformer vit(c, gen);
    to_f64_random(vit, 3);
    NoGradGuard no_grad;
    const Tensor images = uniform({2, 2, 4, 4}, -1, 1, gen, DType::f64);
    const ImageAttention a = vit.attention(images);
    const bool cls = pooling == ViTConfig::Pooling::cls;
    BOOST_TEST(a.cls_first == cls);
    BOOST_TEST(a.grid_height == 2);
    BOOST_REQUIRE_EQUAL(a.layers.size(), 2u);
    const int64_t T = cls ? 5 : 4;
    BOOST_TEST(a.layers[0].shape() == (Shape{2, T, T}));
    BOOST_TEST(tessera::test::max_abs_diff(sum(a.layers[1], {2}), Tensor::ones({2, T}, DType::f64)) < 1e-12);

    // The first block's input, as the ViT makes it; its attention output from the reported weights.
    Tensor x = vit.patch_embed->forward(images);
    if (cls) x = concat({vit.cls_token.expand({2, 1, 4}), x}, 1);
    x = x + vit.pos_embed;
    const auto& block = vit.blocks->items[0];
    const Tensor v = block->attn->qkv->forward(block->norm1->forward(x)).slice(2, 8, 12);
    const Tensor from_weights = block->attn->proj->forward(matmul(a.layers[0], v.contiguous()));
    BOOST_TEST(tessera::test::max_abs_diff(from_weights, block->attn->forward(block->norm1->forward(x))) < 1e-12);
  }
}

BOOST_AUTO_TEST_SUITE_END()
