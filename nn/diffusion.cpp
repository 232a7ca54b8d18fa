#include "nn/diffusion.h"

#include <cmath>
#include <numbers>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops.h"

namespace tessera::nn {

NoiseSchedule parse_noise_schedule(const std::string& name) {
  if (name == "linear") return NoiseSchedule::linear;
  if (name == "cosine") return NoiseSchedule::cosine;
  fail("unknown noise schedule '{}' (linear, cosine)", name);
}

DiffusionTarget parse_diffusion_target(const std::string& name) {
  if (name == "eps") return DiffusionTarget::epsilon;
  if (name == "v") return DiffusionTarget::v;
  fail("unknown diffusion target '{}' (eps, v)", name);
}

Diffusion::Diffusion(NoiseSchedule schedule, DiffusionTarget target, int64_t steps) : target_(target) {
  if (steps < 2) fail("diffusion: needs at least 2 steps, got {}", steps);
  beta_.resize(size_t(steps));
  if (schedule == NoiseSchedule::linear) {
    for (int64_t i = 0; i < steps; ++i) beta_[size_t(i)] = 1e-4 + (0.02 - 1e-4) * double(i) / double(steps - 1);
  } else {
    const auto f = [&](double s) {
      const double c = std::cos((s / double(steps) + 0.008) / 1.008 * std::numbers::pi / 2);
      return c * c;
    };
    for (int64_t i = 0; i < steps; ++i) beta_[size_t(i)] = std::min(1 - f(double(i + 1)) / f(double(i)), 0.999);
  }
  alpha_bar_.resize(size_t(steps));
  double product = 1;
  for (int64_t i = 0; i < steps; ++i) alpha_bar_[size_t(i)] = product *= 1 - beta_[size_t(i)];
}

Tensor Diffusion::per_row(const Tensor& t, const Tensor& like, bool noise_coefficient) const {
  if (!t.defined() || t.dim() != 1 || is_floating(t.dtype()))
    fail("diffusion: steps must be integers [N], got {}", t.defined() ? t.shape_string() : "undefined");
  const Tensor ti = t.contiguous().to(DType::i64);
  std::vector<double> c(size_t(t.size(0)));
  for (int64_t r = 0; r < t.size(0); ++r) {
    const int64_t s = ti.data<int64_t>()[r];
    if (s < 0 || s >= steps()) fail("diffusion: step {} outside [0, {})", s, steps());
    c[size_t(r)] = noise_coefficient ? std::sqrt(1 - alpha_bar(s)) : std::sqrt(alpha_bar(s));
  }
  Shape shape(size_t(like.dim()), 1);
  shape[0] = t.size(0);
  return Tensor::from_vector(c, shape).to(like.dtype());
}

Tensor Diffusion::add_noise(const Tensor& x0, const Tensor& noise, const Tensor& t) const {
  if (x0.shape() != noise.shape() || x0.dim() < 1 || x0.size(0) != t.size(0))
    fail("diffusion: x0 {}, noise {} and steps {} do not match", x0.shape_string(), noise.shape_string(), t.shape_string());
  NoGradGuard no_grad;
  return x0 * per_row(t, x0, false) + noise * per_row(t, x0, true);
}

Tensor Diffusion::training_target(const Tensor& x0, const Tensor& noise, const Tensor& t) const {
  if (target_ == DiffusionTarget::epsilon) return noise.detach();
  NoGradGuard no_grad;
  return noise * per_row(t, x0, false) - x0 * per_row(t, x0, true);
}

Diffusion::Estimate Diffusion::estimate(const Tensor& x_t, const Tensor& output, int64_t t) const {
  if (x_t.shape() != output.shape())
    fail("diffusion: the model's output {} does not match x_t {}", output.shape_string(), x_t.shape_string());
  if (t < 0 || t >= steps()) fail("diffusion: step {} outside [0, {})", t, steps());
  NoGradGuard no_grad;
  const double a = std::sqrt(alpha_bar(t)), s = std::sqrt(1 - alpha_bar(t));
  if (target_ == DiffusionTarget::epsilon) return {(x_t - output * s) * (1 / a), output.detach()};
  return {x_t * a - output * s, x_t * s + output * a};
}

std::vector<int64_t> Diffusion::sampling_steps(int64_t count) const {
  if (count < 1 || count > steps()) fail("diffusion: sampling steps must be in [1, {}], got {}", steps(), count);
  std::vector<int64_t> out;
  if (count == 1) return {steps() - 1};
  for (int64_t i = 0; i < count; ++i)
    out.push_back(std::llround(double(steps() - 1) * double(count - 1 - i) / double(count - 1)));
  return out;
}

Tensor Diffusion::ddim_step(const Tensor& x_t, const Tensor& output, int64_t t, int64_t t_prev) const {
  if (t_prev >= t || t_prev < -1) fail("diffusion: DDIM from step {} to {}", t, t_prev);
  const Estimate e = estimate(x_t, output, t);
  NoGradGuard no_grad;
  const double ap = alpha_bar(t_prev);
  return e.x0 * std::sqrt(ap) + e.noise * std::sqrt(1 - ap);
}

Tensor Diffusion::ddpm_step(const Tensor& x_t, const Tensor& output, int64_t t, int64_t t_prev, const Tensor& noise) const {
  if (t_prev >= t || t_prev < -1) fail("diffusion: DDPM from step {} to {}", t, t_prev);
  const Estimate e = estimate(x_t, output, t);
  NoGradGuard no_grad;
  const double at = alpha_bar(t), ap = alpha_bar(t_prev);
  const double beta = 1 - at / ap;  // the stride's own beta
  const Tensor mean = e.x0 * (std::sqrt(ap) * beta / (1 - at)) + x_t * (std::sqrt(1 - beta) * (1 - ap) / (1 - at));
  if (t_prev < 0) return mean;
  if (!noise.defined() || noise.shape() != x_t.shape())
    fail("diffusion: DDPM noise {} does not match x_t {}", noise.defined() ? noise.shape_string() : "undefined",
         x_t.shape_string());
  return mean + noise * std::sqrt(beta * (1 - ap) / (1 - at));
}

}  // namespace tessera::nn
