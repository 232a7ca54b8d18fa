// The pieces of latent diffusion (issue 19): gradient checks of the DiT's new ops (the adaLN
// modulation and the timestep features), the DiT's layout and adaLN-Zero start, and the noise
// schedules and sampler updates against their closed forms.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <numbers>

#include "autograd/error.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "autograd/random.h"
#include "nn/diffusion.h"
#include "nn/dit.h"
#include "nn/init.h"

using namespace tessera;

namespace {

Tensor leaf(const Shape& shape, uint64_t seed, double low = -1, double high = 1) {
  Generator gen(seed);
  Tensor t = uniform(shape, low, high, gen, DType::f64);
  t.requires_grad_();
  return t;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const Tensor d = abs(a.to(DType::f64) - b.to(DType::f64)).contiguous();
  double m = 0;
  for (int64_t i = 0; i < d.numel(); ++i) m = std::max(m, d.data<double>()[i]);
  return m;
}

nn::DiTConfig small_dit() {
  nn::DiTConfig c;
  c.input_size = 4, c.in_channels = 3, c.patch_size = 2, c.width = 16, c.depth = 2, c.heads = 2, c.num_classes = 5;
  c.frequency_dim = 8;
  return c;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(diffusion)

BOOST_AUTO_TEST_CASE(modulate_gradients) {
  const auto r = gradcheck([](const std::vector<Tensor>& v) { return nn::modulate(v[0], v[1], v[2]); },
                           {leaf({3, 5, 4}, 1), leaf({3, 4}, 2), leaf({3, 4}, 3)});
  BOOST_TEST(r.ok, r.message);
  // and its value: x * (1 + scale) + shift per row
  const Tensor x = leaf({2, 3, 4}, 4), shift = leaf({2, 4}, 5), scale = leaf({2, 4}, 6);
  const Tensor y = nn::modulate(x, shift, scale).contiguous();
  const Tensor xc = x.contiguous(), sh = shift.contiguous(), sc = scale.contiguous();
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 3; ++t)
      for (int64_t d = 0; d < 4; ++d)
        BOOST_TEST(y.data<double>()[(b * 3 + t) * 4 + d] ==
                       xc.data<double>()[(b * 3 + t) * 4 + d] * (1 + sc.data<double>()[b * 4 + d]) + sh.data<double>()[b * 4 + d],
                   boost::test_tools::tolerance(1e-12));
  BOOST_CHECK_EXCEPTION(nn::modulate(x, leaf({3, 4}, 7), scale), Error, [](const Error& e) {
    return std::string(e.what()).find("modulate: x [2, 3, 4] needs shift and scale [2, 4]") != std::string::npos;
  });
}

// The blocks' fused ops (autograd/ops/modulation.h) against the composition they replace:
// modulate(layer_norm(x), shift, scale) and x + a * gate.unsqueeze(1), values and every gradient,
// in f64 and (through the SIMD kernels) f32; then finite differences and the shape errors.
BOOST_AUTO_TEST_CASE(fused_modulation_equals_the_composition) {
  for (DType dtype : {DType::f64, DType::f32}) {
    BOOST_TEST_CONTEXT(dtype_name(dtype)) {
      const double tol = dtype == DType::f64 ? 1e-12 : 2e-5;
      auto make = [&](const Shape& shape, uint64_t seed) { return leaf(shape, seed, -2, 2).detach().to(dtype).requires_grad_(); };
      const Tensor x = make({3, 5, 17}, 20), shift = make({3, 17}, 21), scale = make({3, 17}, 22);
      const Tensor a = make({3, 5, 17}, 23), w = make({3, 5, 17}, 24).detach();
      // the per-sample vectors as DiT gives them: column slices of one wider tensor
      const Tensor wide = make({3, 34}, 25);
      auto gate = [&] { return wide.slice(1, 17, 34); };  // a fresh view per graph

      auto grads = [&](const Tensor& out, const std::vector<Tensor>& leaves) {
        for (Tensor l : leaves) l.zero_grad();
        sum(out * w).backward();
        std::vector<Tensor> g;
        for (const Tensor& l : leaves) g.push_back(l.grad());
        return g;
      };
      const Tensor fused = modulated_layer_norm(x, shift, scale, 1e-6);
      const Tensor composed = nn::modulate(layer_norm(x, Tensor(), Tensor(), 1e-6), shift, scale);
      BOOST_TEST(max_abs_diff(fused, composed) < tol);
      const auto g1 = grads(fused, {x, shift, scale});
      const auto g2 = grads(composed, {x, shift, scale});
      for (size_t i = 0; i < 3; ++i) BOOST_TEST(max_abs_diff(g1[i], g2[i]) < 10 * tol, "modulated_layer_norm input " << i);

      const Tensor fused_add = gated_add(x, a, gate());
      const Tensor composed_add = x + a * gate().unsqueeze(1);
      BOOST_TEST(max_abs_diff(fused_add, composed_add) < tol);
      const auto h1 = grads(fused_add, {x, a, wide});
      const auto h2 = grads(composed_add, {x, a, wide});
      for (size_t i = 0; i < 3; ++i) BOOST_TEST(max_abs_diff(h1[i], h2[i]) < 10 * tol, "gated_add input " << i);
    }
  }
}

BOOST_AUTO_TEST_CASE(fused_modulation_gradients_and_errors) {
  auto r = gradcheck([](const std::vector<Tensor>& v) { return modulated_layer_norm(v[0], v[1], v[2], 1e-6); },
                     {leaf({2, 3, 5}, 30), leaf({2, 5}, 31), leaf({2, 5}, 32)});
  BOOST_TEST(r.ok, r.message);
  r = gradcheck([](const std::vector<Tensor>& v) { return gated_add(v[0], v[1], v[2]); },
                {leaf({2, 3, 5}, 33), leaf({2, 3, 5}, 34), leaf({2, 5}, 35)});
  BOOST_TEST(r.ok, r.message);
  const Tensor x = leaf({2, 3, 4}, 36);
  auto says = [](const char* text) {
    return [text](const Error& e) { return std::string(e.what()).find(text) != std::string::npos; };
  };
  BOOST_CHECK_EXCEPTION(modulated_layer_norm(x, leaf({3, 4}, 37), leaf({2, 4}, 38), 1e-6), Error,
                        says("modulated_layer_norm: x [2, 3, 4] needs shift [2, 4], got [3, 4]"));
  BOOST_CHECK_EXCEPTION(gated_add(x, leaf({2, 3, 5}, 39), leaf({2, 4}, 40)), Error,
                        says("gated_add: a must have x's shape [2, 3, 4], got [2, 3, 5]"));
  BOOST_CHECK_EXCEPTION(gated_add(leaf({6, 4}, 41), leaf({6, 4}, 42), leaf({2, 4}, 43)), Error,
                        says("gated_add: x must be real [N, T, C], got [6, 4]"));
  BOOST_CHECK_EXCEPTION(gated_add(x, x, leaf({2, 4}, 44).detach().to(DType::f32)), Error,
                        says("gated_add: every input must be f64 like x, got f32"));
}

BOOST_AUTO_TEST_CASE(timestep_features_values_and_gradients) {
  const Tensor t = leaf({4}, 8, 0, 999);
  const auto r = gradcheck([](const std::vector<Tensor>& v) { return nn::timestep_features(v[0], 6); }, {leaf({4}, 9, 0, 3)});
  BOOST_TEST(r.ok, r.message);
  const Tensor f = nn::timestep_features(t, 8).contiguous(), tc = t.contiguous();
  for (int64_t n = 0; n < 4; ++n)
    for (int64_t i = 0; i < 4; ++i) {
      const double freq = std::exp(-std::log(10000.0) * double(i) / 4), a = tc.data<double>()[n] * freq;
      BOOST_TEST(f.data<double>()[n * 8 + i] == std::cos(a), boost::test_tools::tolerance(1e-12));
      BOOST_TEST(f.data<double>()[n * 8 + 4 + i] == std::sin(a), boost::test_tools::tolerance(1e-12));
    }
  BOOST_CHECK_THROW(nn::timestep_features(t, 7), Error);
}

BOOST_AUTO_TEST_CASE(dit_names_shapes_and_adaln_zero_start) {
  Generator gen(3);
  nn::DiT dit(small_dit(), gen);
  std::map<std::string, Shape> shapes;
  for (const auto& [name, t] : dit.state()) shapes[name] = t.shape();
  BOOST_TEST((shapes.at("x_embedder.proj.weight") == Shape{16, 3, 2, 2}));
  BOOST_TEST((shapes.at("pos_embed") == Shape{1, 4, 16}));
  BOOST_TEST((shapes.at("t_embedder.mlp.0.weight") == Shape{16, 8}));
  BOOST_TEST((shapes.at("t_embedder.mlp.2.weight") == Shape{16, 16}));
  BOOST_TEST((shapes.at("y_embedder.embedding_table.weight") == Shape{6, 16}));
  BOOST_TEST((shapes.at("blocks.1.adaLN_modulation.1.weight") == Shape{96, 16}));
  BOOST_TEST((shapes.at("blocks.1.attn.qkv.weight") == Shape{48, 16}));
  BOOST_TEST((shapes.at("final_layer.adaLN_modulation.1.weight") == Shape{32, 16}));
  BOOST_TEST((shapes.at("final_layer.linear.weight") == Shape{12, 16}));
  BOOST_TEST(!shapes.count("blocks.0.norm1.weight"));  // no affine: the modulation scales and shifts
  Generator data(4);
  const Tensor x = randn({2, 3, 4, 4}, data), t = Tensor::from_vector(std::vector<float>{3, 500}, {2});
  const Tensor y = Tensor::from_vector(std::vector<int64_t>{1, 5}, {2});
  // adaLN-Zero: the untrained model outputs zero, whatever it is given
  BOOST_TEST(max_abs_diff(dit.forward(x, t, y), Tensor::zeros({2, 3, 4, 4})) == 0.0);
  // Once the output layer is not zero, the output depends on the timestep and the class.
  nn::init::normal_(dit.final_layer->linear->weight, 0, 0.5, data);
  for (auto& b : dit.blocks->items) nn::init::normal_(b->adaLN_modulation->linear->weight, 0, 0.5, data);
  const Tensor base = dit.forward(x, t, y);
  BOOST_TEST(max_abs_diff(base, dit.forward(x, Tensor::from_vector(std::vector<float>{4, 500}, {2}), y)) > 1e-6);
  BOOST_TEST(max_abs_diff(base, dit.forward(x, t, Tensor::from_vector(std::vector<int64_t>{2, 5}, {2}))) > 1e-6);
  BOOST_CHECK_EXCEPTION(dit.forward(randn({2, 3, 5, 5}, data), t, y), Error, [](const Error& e) {
    return std::string(e.what()).find("DiT: latents must be [N, 3, 4, 4], got [2, 3, 5, 5]") != std::string::npos;
  });
  BOOST_CHECK_THROW(dit.forward(x, t, Tensor::from_vector(std::vector<int64_t>{1, 6}, {2})), Error);  // label past "no class"
  nn::DiTConfig bad = small_dit();
  bad.patch_size = 3;
  BOOST_CHECK_EXCEPTION(nn::DiT(bad, gen), Error, [](const Error& e) {
    return std::string(e.what()).find("patch_size 3 does not divide the latent grid side 4") != std::string::npos;
  });
}

BOOST_AUTO_TEST_CASE(noise_schedules_match_their_closed_forms) {
  const nn::Diffusion linear(nn::NoiseSchedule::linear, nn::DiffusionTarget::epsilon, 1000);
  BOOST_TEST(linear.beta(0) == 1e-4, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(linear.beta(999) == 0.02, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(linear.beta(500) == 1e-4 + (0.02 - 1e-4) * 500.0 / 999.0, boost::test_tools::tolerance(1e-12));
  double product = 1;
  for (int64_t t = 0; t < 1000; ++t) product *= 1 - linear.beta(t);
  BOOST_TEST(linear.alpha_bar(999) == product, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(linear.alpha_bar(-1) == 1.0);
  BOOST_TEST(linear.alpha_bar(999) < 1e-4);  // the last step is nearly pure noise
  // cosine: alpha-bar(t) = f(t + 1) / f(0), f(s) = cos((s/T + 0.008) / 1.008 * pi/2)^2, while no beta is capped
  const nn::Diffusion cosine(nn::NoiseSchedule::cosine, nn::DiffusionTarget::v, 1000);
  const auto f = [](double s) { return std::pow(std::cos((s / 1000 + 0.008) / 1.008 * std::numbers::pi / 2), 2); };
  for (const int64_t t : {0, 10, 250, 500, 900})
    BOOST_TEST(cosine.alpha_bar(t) == f(double(t + 1)) / f(0), boost::test_tools::tolerance(1e-9));
  BOOST_TEST(cosine.beta(999) == 0.999);  // capped
  const std::vector<int64_t> steps = linear.sampling_steps(5);
  BOOST_TEST(steps == (std::vector<int64_t>{999, 749, 500, 250, 0}), boost::test_tools::per_element());
  BOOST_CHECK_THROW(linear.sampling_steps(1001), Error);
  BOOST_CHECK_THROW(nn::Diffusion(nn::NoiseSchedule::linear, nn::DiffusionTarget::v, 1), Error);
}

BOOST_AUTO_TEST_CASE(targets_invert_and_samplers_match_closed_forms) {
  for (const auto target : {nn::DiffusionTarget::epsilon, nn::DiffusionTarget::v}) {
    const nn::Diffusion d(nn::NoiseSchedule::cosine, target, 1000);
    Generator gen(11);
    const Tensor x0 = randn({3, 2, 2, 2}, gen, DType::f64), eps = randn({3, 2, 2, 2}, gen, DType::f64);
    const int64_t t = 600;
    const Tensor steps = Tensor::full({3}, double(t), DType::i64);
    const Tensor x_t = d.add_noise(x0, eps, steps);
    const double a = std::sqrt(d.alpha_bar(t)), s = std::sqrt(1 - d.alpha_bar(t));
    BOOST_TEST(max_abs_diff(x_t, x0 * a + eps * s) < 1e-12);
    const Tensor out = d.training_target(x0, eps, steps);  // what a perfect model outputs
    BOOST_TEST(max_abs_diff(out, target == nn::DiffusionTarget::epsilon ? eps : eps * a - x0 * s) < 1e-12);
    const nn::Diffusion::Estimate e = d.estimate(x_t, out, t);
    BOOST_TEST(max_abs_diff(e.x0, x0) < 1e-10);
    BOOST_TEST(max_abs_diff(e.noise, eps) < 1e-10);
    // DDIM with the true noise lands exactly on the same noise at the earlier step ...
    const int64_t prev = 200;
    const double ap = d.alpha_bar(prev);
    BOOST_TEST(max_abs_diff(d.ddim_step(x_t, out, t, prev), x0 * std::sqrt(ap) + eps * std::sqrt(1 - ap)) < 1e-10);
    // ... and on x0 at the end.
    BOOST_TEST(max_abs_diff(d.ddim_step(x_t, out, t, -1), x0) < 1e-10);
    // DDPM over one step: the posterior q(x_{t-1} | x_t, x0) of Ho et al. (eq. 7), plus sigma z.
    const int64_t u = 300;
    const Tensor x_u = d.add_noise(x0, eps, Tensor::full({3}, double(u), DType::i64));
    const Tensor out_u = d.training_target(x0, eps, Tensor::full({3}, double(u), DType::i64));
    const double beta = d.beta(u), abar = d.alpha_bar(u), abar_prev = d.alpha_bar(u - 1);
    const Tensor z = randn({3, 2, 2, 2}, gen, DType::f64);
    const Tensor expected = x0 * (std::sqrt(abar_prev) * beta / (1 - abar)) +
                            x_u * (std::sqrt(1 - beta) * (1 - abar_prev) / (1 - abar)) +
                            z * std::sqrt((1 - abar_prev) / (1 - abar) * beta);
    BOOST_TEST(max_abs_diff(d.ddpm_step(x_u, out_u, u, u - 1, z), expected) < 1e-10);
    BOOST_TEST(max_abs_diff(d.ddpm_step(x_u, out_u, u, -1, Tensor()), x0) < 1e-10);  // the last step adds no noise
  }
  const nn::Diffusion d(nn::NoiseSchedule::linear, nn::DiffusionTarget::epsilon, 10);
  BOOST_CHECK_THROW(d.add_noise(Tensor::zeros({2, 3}), Tensor::zeros({2, 3}), Tensor::full({2}, 10.0, DType::i64)), Error);
  BOOST_CHECK_THROW(d.ddim_step(Tensor::zeros({2, 3}), Tensor::zeros({2, 3}), 3, 5), Error);
}

BOOST_AUTO_TEST_SUITE_END()
