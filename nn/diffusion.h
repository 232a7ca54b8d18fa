#pragma once
// Denoising diffusion (DDPM, Ho et al. 2020) as the arithmetic of a noise schedule: noising a
// clean sample to step t, the training target, reading the clean sample and the noise back from a
// model's output, and the DDIM (Song et al. 2021, eta = 0) and DDPM ancestral updates on a strided
// subset of the steps. No model and no randomness of its own: callers pass the noise.
#include <cstdint>
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace tessera::nn {

enum class NoiseSchedule { linear, cosine };
enum class DiffusionTarget { epsilon, v };  // what the model predicts: the noise, or v (Salimans & Ho 2022)

NoiseSchedule parse_noise_schedule(const std::string& name);  // "linear" | "cosine"
DiffusionTarget parse_diffusion_target(const std::string& name);  // "eps" | "v"

class Diffusion {
 public:
  // linear: betas from 1e-4 to 0.02 over `steps` (DDPM); cosine: Nichol & Dhariwal's alpha-bar
  // (offset 0.008, betas capped at 0.999).
  Diffusion(NoiseSchedule schedule, DiffusionTarget target, int64_t steps = 1000);

  int64_t steps() const { return int64_t(alpha_bar_.size()); }
  DiffusionTarget target() const { return target_; }
  double beta(int64_t t) const { return beta_.at(size_t(t)); }
  // The product of (1 - beta) up to and including t; 1 for t = -1 (the clean sample).
  double alpha_bar(int64_t t) const { return t < 0 ? 1.0 : alpha_bar_.at(size_t(t)); }

  // x0, noise [N, ...] and steps t (integers [N]): sqrt(ab) x0 + sqrt(1 - ab) noise. No gradients.
  Tensor add_noise(const Tensor& x0, const Tensor& noise, const Tensor& t) const;
  // What the model is trained to output at t: the noise, or v = sqrt(ab) noise - sqrt(1 - ab) x0.
  Tensor training_target(const Tensor& x0, const Tensor& noise, const Tensor& t) const;

  struct Estimate {
    Tensor x0, noise;
  };
  // The clean sample and the noise implied by a model output at one step t for every row.
  Estimate estimate(const Tensor& x_t, const Tensor& output, int64_t t) const;

  // `count` steps from steps()-1 down to 0, evenly spaced (rounded); count in [1, steps()].
  std::vector<int64_t> sampling_steps(int64_t count) const;
  // One update from step t to step t_prev (< t; -1 = the end), given the model's output at t.
  Tensor ddim_step(const Tensor& x_t, const Tensor& output, int64_t t, int64_t t_prev) const;
  // The ancestral DDPM update over the same stride; `noise` ~ N(0, 1) like x_t (unused when t_prev = -1).
  Tensor ddpm_step(const Tensor& x_t, const Tensor& output, int64_t t, int64_t t_prev, const Tensor& noise) const;

 private:
  // sqrt(ab_t) (or sqrt(1 - ab_t)) per row as [N, 1, 1, ...], in the dtype of `like`.
  Tensor per_row(const Tensor& t, const Tensor& like, bool noise_coefficient) const;

  DiffusionTarget target_;
  std::vector<double> beta_, alpha_bar_;
};

}  // namespace tessera::nn
