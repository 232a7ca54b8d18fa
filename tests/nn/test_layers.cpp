// The general layers: conv ops against direct loops over many geometries, parameter names,
// shapes and PyTorch-default initialisation, dropout statistics and reproducibility, Sequential,
// Embedding, activations, resampling.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <memory>

#include "autograd/ops/conv.h"
#include "autograd/ops/dropout.h"
#include "autograd/error.h"
#include "autograd/gradcheck.h"
#include "autograd/ops/group_norm.h"
#include "autograd/ops.h"
#include "autograd/random.h"
#include "kernels/threads.h"
#include "nn/activation.h"
#include "nn/conv.h"
#include "nn/dropout.h"
#include "nn/embedding.h"
#include "nn/norm.h"
#include "nn/resample.h"
#include "nn/sequential.h"

using namespace tessera;

namespace {

Tensor random_f64(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  return uniform(shape, -1, 1, gen, DType::f64);
}

// conv2d by its definition: y[n, o, oy, ox] = b[o] + sum w[o, c, i, j] x[n, g C/G + c, oy s - p + i d, ...].
std::vector<double> direct_conv(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& o,
                                const Shape& out_shape) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t O = w.size(0), Cg = w.size(1), KH = w.size(2), KW = w.size(3);
  const int64_t OH = out_shape[2], OW = out_shape[3], Og = O / o.groups;
  (void)C;
  const std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>();
  std::vector<double> y(size_t(N * O * OH * OW));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oc = 0; oc < O; ++oc)
      for (int64_t oy = 0; oy < OH; ++oy)
        for (int64_t ox = 0; ox < OW; ++ox) {
          double acc = b.defined() ? b.at({oc}) : 0.0;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t i = 0; i < KH; ++i)
              for (int64_t j = 0; j < KW; ++j) {
                const int64_t iy = oy * o.stride[0] - o.padding[0] + i * o.dilation[0];
                const int64_t ix = ox * o.stride[1] - o.padding[1] + j * o.dilation[1];
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                const int64_t ic = (oc / Og) * Cg + c;
                acc += wv[((oc * Cg + c) * KH + i) * KW + j] * xv[((n * x.size(1) + ic) * H + iy) * W + ix];
              }
          y[((n * O + oc) * OH + oy) * OW + ox] = acc;
        }
  return y;
}

// conv_transpose2d by its definition: every input pixel scatters its weighted kernel.
std::vector<double> direct_conv_transpose(const Tensor& x, const Tensor& w, const ConvTranspose2dOptions& o,
                                          const Shape& out_shape) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t Og = w.size(1), KH = w.size(2), KW = w.size(3), Cg = C / o.groups;
  const int64_t O = out_shape[1], OH = out_shape[2], OW = out_shape[3];
  const std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>();
  std::vector<double> y(size_t(N * O * OH * OW), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t iy = 0; iy < H; ++iy)
        for (int64_t ix = 0; ix < W; ++ix)
          for (int64_t oc = 0; oc < Og; ++oc)
            for (int64_t i = 0; i < KH; ++i)
              for (int64_t j = 0; j < KW; ++j) {
                const int64_t oy = iy * o.stride[0] - o.padding[0] + i * o.dilation[0];
                const int64_t ox = ix * o.stride[1] - o.padding[1] + j * o.dilation[1];
                if (oy < 0 || oy >= OH || ox < 0 || ox >= OW) continue;
                const int64_t out_c = (c / Cg) * Og + oc;
                y[((n * O + out_c) * OH + oy) * OW + ox] +=
                    wv[((c * Og + oc) * KH + i) * KW + j] * xv[((n * C + c) * H + iy) * W + ix];
              }
  return y;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(layers)

BOOST_AUTO_TEST_CASE(conv_ops_match_direct_loops_over_random_geometries) {
  Generator pick(99);
  auto draw = [&](int64_t lo, int64_t hi) { return randint(lo, hi + 1, {1}, pick).to_vector<int64_t>()[0]; };
  int checked = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const int64_t groups = draw(1, 3), cg = draw(1, 3), og = draw(1, 3), n = draw(1, 3);
    const Size2 k{draw(1, 4), draw(1, 4)}, s{draw(1, 3), draw(1, 3)}, d{draw(1, 2), draw(1, 2)};
    const Size2 p{draw(0, 2), draw(0, 2)};
    const int64_t h = draw(1, 9), w = draw(1, 9);
    const Tensor x = random_f64({n, groups * cg, h, w}, 1000 + trial);
    const Tensor b = random_f64({groups * og}, 3000 + trial);
    // conv2d, when the kernel fits
    if (h + 2 * p[0] >= d[0] * (k[0] - 1) + 1 && w + 2 * p[1] >= d[1] * (k[1] - 1) + 1) {
      const Conv2dOptions o{s, p, d, groups};
      const Tensor wt = random_f64({groups * og, cg, k[0], k[1]}, 2000 + trial);
      const Tensor y = conv2d(x, wt, trial % 2 ? b : Tensor(), o);
      const double err = max_abs_diff(y.to_vector<double>(), direct_conv(x, wt, trial % 2 ? b : Tensor(), o, y.shape()));
      BOOST_TEST(err < 1e-12, "conv2d trial " << trial << " x " << x.shape_string() << " w " << wt.shape_string()
                                              << ": max error " << err);
      ++checked;
    }
    // conv_transpose2d, with a legal output padding
    const Size2 op{draw(0, std::max(s[0], d[0]) - 1), draw(0, std::max(s[1], d[1]) - 1)};
    const int64_t oh = (h - 1) * s[0] - 2 * p[0] + d[0] * (k[0] - 1) + op[0] + 1;
    const int64_t ow = (w - 1) * s[1] - 2 * p[1] + d[1] * (k[1] - 1) + op[1] + 1;
    if (oh >= 1 && ow >= 1) {
      const ConvTranspose2dOptions o{s, p, op, d, groups};
      const Tensor wt = random_f64({groups * cg, og, k[0], k[1]}, 4000 + trial);
      const Tensor y = conv_transpose2d(x, wt, Tensor(), o);
      BOOST_TEST((y.shape() == Shape{n, groups * og, oh, ow}), y.shape_string());
      const double err = max_abs_diff(y.to_vector<double>(), direct_conv_transpose(x, wt, o, y.shape()));
      BOOST_TEST(err < 1e-12, "conv_transpose2d trial " << trial << " x " << x.shape_string() << " w "
                                                        << wt.shape_string() << ": max error " << err);
      ++checked;
    }
  }
  BOOST_TEST(checked > 400);
}

BOOST_AUTO_TEST_CASE(conv_results_do_not_depend_on_the_thread_count) {
  // Large enough for several chunks and lanes; outputs and every gradient must match bit for bit.
  Generator gen(31);
  const Tensor x0 = uniform({21, 32, 14, 14}, -1, 1, gen), w0 = uniform({16, 32, 4, 4}, -1, 1, gen);
  const Tensor wt0 = uniform({32, 8, 4, 4}, -1, 1, gen);
  auto run = [&](int threads) {
    kernels::set_num_threads(threads);
    Tensor x = x0.clone(), w = w0.clone(), wt = wt0.clone();
    x.requires_grad_(), w.requires_grad_(), wt.requires_grad_();
    const Tensor y = conv2d(x, w, Tensor(), {.stride = {2, 2}, .padding = {1, 1}});
    const Tensor z = conv_transpose2d(x, wt, Tensor(), {.stride = {2, 2}, .padding = {1, 1}});
    (sum(y * y) + sum(z * z)).backward();
    std::vector<std::vector<float>> out;
    for (const Tensor& t : {y, z, x.grad(), w.grad(), wt.grad()}) out.push_back(t.to_vector<float>());
    return out;
  };
  const int threads = kernels::num_threads();
  const auto one = run(1), two = run(2);
  kernels::set_num_threads(threads);
  for (size_t i = 0; i < one.size(); ++i) BOOST_TEST(one[i] == two[i], "tensor " << i);
}

BOOST_AUTO_TEST_CASE(conv_layers_have_pytorch_names_shapes_and_init) {
  Generator gen(5);
  nn::Conv2d conv(8, 16, {3, 3}, {.padding = {1, 1}, .groups = 2}, true, gen);
  const nn::NamedTensors params = conv.named_parameters();
  BOOST_TEST_REQUIRE(params.size() == 2u);
  BOOST_TEST(params[0].first == "weight");
  BOOST_TEST(params[1].first == "bias");
  BOOST_TEST((conv.weight.shape() == Shape{16, 4, 3, 3}));
  BOOST_TEST(conv.parameter_count() == 16 * 4 * 9 + 16);
  // U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = 4 * 9: inside the bound, and spread over it.
  const double bound = 1 / std::sqrt(36.0);
  const std::vector<double> w = conv.weight.to_vector<double>();
  double lo = 1, hi = -1;
  for (double v : w) lo = std::min(lo, v), hi = std::max(hi, v);
  BOOST_TEST(lo >= -bound);
  BOOST_TEST(hi <= bound);
  BOOST_TEST(lo < -0.9 * bound);
  BOOST_TEST(hi > 0.9 * bound);
  for (double v : conv.bias.to_vector<double>()) BOOST_TEST(std::abs(v) <= bound);
  BOOST_TEST((conv.forward(Tensor::zeros({2, 8, 5, 5})).shape() == Shape{2, 16, 5, 5}));
  BOOST_CHECK_THROW(conv.forward(Tensor::zeros({2, 7, 5, 5})), Error);
  BOOST_CHECK_THROW(nn::Conv2d(6, 4, {3, 3}, {.groups = 4}, true, gen), Error);

  nn::ConvTranspose2d up(16, 8, {4, 4}, {.stride = {2, 2}, .padding = {1, 1}}, false, gen);
  BOOST_TEST(up.named_parameters().size() == 1u);
  BOOST_TEST((up.weight.shape() == Shape{16, 8, 4, 4}));
  const double up_bound = 1 / std::sqrt(8.0 * 16);  // PyTorch takes fan_in from dim 1 (out / groups)
  for (double v : up.weight.to_vector<double>()) BOOST_TEST_REQUIRE(std::abs(v) <= up_bound);
  BOOST_TEST((up.forward(Tensor::zeros({1, 16, 7, 7})).shape() == Shape{1, 8, 14, 14}));
}

BOOST_AUTO_TEST_CASE(group_norm_layer) {
  nn::GroupNorm gn(4, 8);
  BOOST_TEST(gn.named_parameters().size() == 2u);
  BOOST_TEST(gn.weight.to_vector<double>() == std::vector<double>(8, 1.0));
  BOOST_TEST(gn.bias.to_vector<double>() == std::vector<double>(8, 0.0));
  BOOST_TEST(nn::GroupNorm(2, 8, 1e-5, false).named_parameters().empty());
  BOOST_CHECK_THROW(nn::GroupNorm(3, 8), Error);
  // Each (sample, group) block comes out with mean 0 and variance 1 (up to eps).
  Generator gen(3);
  const Tensor x = normal({2, 8, 5, 5}, 3.0, 2.0, gen);
  const Tensor y = gn.forward(x).reshape({2, 4, 50});
  const std::vector<double> m = mean(y, {2}).to_vector<double>(), v = var(y, {2}, 0).to_vector<double>();
  for (double e : m) BOOST_TEST(std::abs(e) < 1e-5);
  for (double e : v) BOOST_TEST(std::abs(e - 1) < 1e-4);
}

BOOST_AUTO_TEST_CASE(dropout_statistics_scaling_and_modes) {
  const double p = 0.3;
  Generator gen(17);
  nn::Dropout drop(p, gen);
  const Tensor x = Tensor::ones({200, 500});
  const std::vector<float> y = drop.forward(x).to_vector<float>();
  int64_t zeros = 0;
  for (float v : y) {
    if (v == 0) ++zeros;
    else BOOST_TEST_REQUIRE(std::abs(v - 1 / (1 - p)) < 1e-6);
  }
  // 100000 Bernoulli(0.3): the standard deviation of the fraction is 0.0015.
  BOOST_TEST(std::abs(double(zeros) / double(y.size()) - p) < 0.01);
  // The next draw uses fresh counters: a different mask.
  BOOST_TEST(drop.forward(x).to_vector<float>() != y);
  drop.eval();
  BOOST_TEST(drop.forward(x).same(x));
  BOOST_CHECK_THROW(nn::Dropout(-0.1), Error);
  // p = 1 drops everything
  Generator g1(1);
  for (float v : dropout(x, 1.0, true, g1).to_vector<float>()) BOOST_TEST_REQUIRE(v == 0);
}

BOOST_AUTO_TEST_CASE(dropout_mask_depends_on_the_generator_only) {
  const Tensor x = Tensor::ones({300, 300});
  const int threads = kernels::num_threads();
  kernels::set_num_threads(1);
  Generator a(42);
  const std::vector<float> one = dropout(x, 0.5, true, a).to_vector<float>();
  kernels::set_num_threads(2);
  Generator b(42);
  const std::vector<float> two = dropout(x, 0.5, true, b).to_vector<float>();
  kernels::set_num_threads(threads);
  BOOST_TEST(one == two);
  BOOST_TEST(a.offset() == b.offset());
  BOOST_TEST(a.offset() == uint64_t(300 * 300 / 4));
}

BOOST_AUTO_TEST_CASE(drop_path_drops_whole_samples) {
  const double p = 0.25;
  Generator gen(23);
  nn::DropPath dp(p, gen);
  const int64_t n = 4000;
  const Tensor x = Tensor::ones({n, 3, 4});
  const std::vector<float> y = dp.forward(x).to_vector<float>();
  int64_t dropped = 0;
  for (int64_t s = 0; s < n; ++s) {
    const float first = y[size_t(s * 12)];
    for (int64_t i = 1; i < 12; ++i) BOOST_TEST_REQUIRE(y[size_t(s * 12 + i)] == first);
    if (first == 0) ++dropped;
    else BOOST_TEST_REQUIRE(std::abs(first - 1 / (1 - p)) < 1e-6);
  }
  // sd of the fraction: sqrt(0.25 * 0.75 / 4000) = 0.0068
  BOOST_TEST(std::abs(double(dropped) / double(n) - p) < 0.035);
  dp.eval();
  BOOST_TEST(dp.forward(x).same(x));
}

BOOST_AUTO_TEST_CASE(activations_compute_their_functions) {
  const Tensor x = Tensor::from_vector<float>({-2.0f, -0.5f, 0.0f, 0.5f, 2.0f}, {5});
  const std::vector<float> xs = x.to_vector<float>();
  auto check = [&](nn::UnaryModule& m, double (*f)(double), const char* name) {
    const std::vector<float> y = m.forward(x).to_vector<float>();
    for (size_t i = 0; i < xs.size(); ++i)
      BOOST_TEST(std::abs(y[i] - f(xs[i])) < 1e-6, name << "(" << xs[i] << ") = " << y[i] << ", expected " << f(xs[i]));
  };
  nn::ReLU relu_m;
  nn::GELU gelu_m;
  nn::GELU gelu_tanh_m(GeluApproximation::tanh);
  nn::SiLU silu_m;
  nn::Tanh tanh_m;
  nn::Sigmoid sigmoid_m;
  check(relu_m, [](double v) { return v > 0 ? v : 0.0; }, "relu");
  check(gelu_m, [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }, "gelu");
  check(gelu_tanh_m,
        [](double v) { return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))); },
        "gelu_tanh");
  check(silu_m, [](double v) { return v / (1 + std::exp(-v)); }, "silu");
  check(tanh_m, [](double v) { return std::tanh(v); }, "tanh");
  check(sigmoid_m, [](double v) { return 1 / (1 + std::exp(-v)); }, "sigmoid");
}

BOOST_AUTO_TEST_CASE(sequential_names_chains_and_propagates_mode) {
  Generator gen(8);
  auto seq = std::make_shared<nn::Sequential>();
  auto conv = seq->append(std::make_shared<nn::Conv2d>(3, 4, Size2{3, 3}, Conv2dOptions{.padding = {1, 1}}, true, gen));
  seq->append(std::make_shared<nn::GroupNorm>(2, 4));
  seq->append(std::make_shared<nn::SiLU>());
  auto drop = seq->append(std::make_shared<nn::Dropout>(0.5, gen));
  seq->append(std::make_shared<nn::Identity>());
  std::vector<std::string> names;
  for (auto& [name, t] : seq->named_parameters()) names.push_back(name);
  BOOST_TEST(names == (std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias"}));
  BOOST_TEST(seq->size() == 5u);
  BOOST_TEST((*seq)[0].get() == conv.get());
  BOOST_CHECK_THROW((*seq)[5], Error);

  seq->eval();
  BOOST_TEST(!drop->is_training());
  Generator xg(9);
  const Tensor x = uniform({2, 3, 6, 6}, -1, 1, xg);
  auto gn = std::dynamic_pointer_cast<nn::GroupNorm>((*seq)[1]);
  BOOST_TEST_REQUIRE(gn != nullptr);
  const Tensor expected = silu(group_norm(conv->forward(x), 2, gn->weight, gn->bias));
  BOOST_TEST(seq->forward(x).to_vector<float>() == expected.to_vector<float>());
  seq->train();
  BOOST_TEST(drop->is_training());
}

BOOST_AUTO_TEST_CASE(embedding_layer) {
  Generator gen(12);
  nn::Embedding emb(1000, 16, gen);
  BOOST_TEST(emb.named_parameters().size() == 1u);
  BOOST_TEST((emb.weight.shape() == Shape{1000, 16}));
  // N(0, 1) initialisation: 16000 draws
  const std::vector<double> w = emb.weight.to_vector<double>();
  double s = 0, s2 = 0;
  for (double v : w) s += v, s2 += v * v;
  const double m = s / double(w.size()), sd = std::sqrt(s2 / double(w.size()) - m * m);
  BOOST_TEST(std::abs(m) < 0.03);
  BOOST_TEST(std::abs(sd - 1) < 0.03);
  const Tensor ids = Tensor::from_vector<int64_t>({3, 999, 3, 0, 7, 3}, {2, 3});
  const Tensor y = emb.forward(ids);
  BOOST_TEST((y.shape() == Shape{2, 3, 16}));
  const std::vector<int64_t> idv = ids.to_vector<int64_t>();
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t d = 0; d < 16; ++d) BOOST_TEST_REQUIRE(y.at({i / 3, i % 3, d}) == emb.weight.at({idv[size_t(i)], d}));
  // A repeated id gathers the gradient of every use.
  sum(y).backward();
  BOOST_TEST(emb.weight.grad().at({3, 5}) == 3.0);
  BOOST_TEST(emb.weight.grad().at({7, 0}) == 1.0);
  BOOST_TEST(emb.weight.grad().at({1, 0}) == 0.0);
  BOOST_CHECK_THROW(emb.forward(Tensor::zeros({2})), Error);  // float ids
}

BOOST_AUTO_TEST_CASE(resampling_layers) {
  const Tensor x = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {1, 1, 2, 3});
  nn::Upsample up(2);
  const Tensor y = up.forward(x);
  BOOST_TEST((y.shape() == Shape{1, 1, 4, 6}));
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 0; c < 6; ++c) BOOST_TEST_REQUIRE(y.at({0, 0, r, c}) == x.at({0, 0, r / 2, c / 2}));
  nn::AvgPool2d pool({2, 2});
  const Tensor back = pool.forward(y);
  BOOST_TEST(back.to_vector<float>() == x.to_vector<float>());
  // 3x3 windows, stride 1, padding 1: zeros padded in and counted (PyTorch's default)
  const Tensor ones = Tensor::ones({1, 1, 3, 3});
  const std::vector<float> p = nn::AvgPool2d({3, 3}, {1, 1}, {1, 1}).forward(ones).to_vector<float>();
  BOOST_TEST(std::abs(p[0] - 4.0f / 9) < 1e-6);
  BOOST_TEST(std::abs(p[1] - 6.0f / 9) < 1e-6);
  BOOST_TEST(std::abs(p[4] - 1.0f) < 1e-6);
  BOOST_CHECK_THROW(nn::Upsample(0), Error);
}

// The layers in f32, through their own parameters (gradcheck perturbs them in place), with the
// f32 settings of autograd/gradcheck.h: a wrong gradient is off by O(1), rounding by ~1e-3.
BOOST_AUTO_TEST_CASE(layers_gradcheck_through_their_parameters) {
  const GradcheckOptions f32{.eps = 1e-2, .atol = 1e-2, .rtol = 1e-2};
  Generator gen(77);
  auto input = [&](const Shape& shape) {
    Tensor t = uniform(shape, -1, 1, gen);
    t.requires_grad_();
    return t;
  };
  auto check = [&](nn::UnaryModule& m, const Tensor& x, const GradcheckOptions& o) {
    std::vector<Tensor> in{x};
    for (const Tensor& p : m.parameters()) in.push_back(p);
    const GradcheckResult r = gradcheck([&](const std::vector<Tensor>& v) { return m.forward(v[0]); }, in, o);
    BOOST_TEST(r.ok, r.message);
  };
  nn::Conv2d conv(4, 6, {3, 3}, {.stride = {2, 2}, .padding = {1, 1}, .groups = 2}, true, gen);
  check(conv, input({2, 4, 5, 5}), f32);
  nn::ConvTranspose2d up(4, 3, {4, 4}, {.stride = {2, 2}, .padding = {1, 1}}, true, gen);
  check(up, input({2, 4, 3, 3}), f32);
  nn::GroupNorm gn(2, 4);
  gn.weight.copy_(uniform({4}, 0.5, 1.5, gen));
  gn.bias.copy_(uniform({4}, -1, 1, gen));
  check(gn, input({2, 4, 3, 3}), {.eps = 1e-3, .atol = 1e-2, .rtol = 1e-2});
  // a residual-block-like chain: conv, norm, SiLU, conv
  nn::Sequential block;
  block.append(std::make_shared<nn::Conv2d>(3, 4, Size2{3, 3}, Conv2dOptions{.padding = {1, 1}}, true, gen));
  block.append(std::make_shared<nn::GroupNorm>(2, 4));
  block.append(std::make_shared<nn::SiLU>());
  block.append(std::make_shared<nn::Conv2d>(4, 2, Size2{1, 1}, Conv2dOptions{}, true, gen));
  check(block, input({2, 3, 4, 4}), {.eps = 1e-3, .atol = 1e-2, .rtol = 1e-2});
}

BOOST_AUTO_TEST_SUITE_END()
