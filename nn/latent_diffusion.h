#pragma once
// Latent diffusion (Rombach et al. 2022) with a DiT denoiser: images go through a frozen VAE to a
// grid of soft tokens, scaled to unit variance; the DiT learns to denoise them, conditioned on the
// class; sampling runs the reverse process from noise with classifier-free guidance (Ho & Salimans
// 2022) and decodes through the VAE. The VAE is a child (`vae.*`), so a checkpoint holds everything
// sampling needs; it never trains (its forward runs without gradients).
#include <memory>

#include "autograd/random.h"
#include "nn/capabilities.h"
#include "nn/diffusion.h"
#include "nn/dit.h"
#include "nn/module.h"

namespace tessera::nn {

struct LatentDiffusionOptions {
  DiTConfig dit;  // input_size and in_channels are the VAE's grid
  NoiseSchedule schedule = NoiseSchedule::linear;
  DiffusionTarget target = DiffusionTarget::epsilon;
  int64_t timesteps = 1000;
  double class_dropout = 0.1;  // training labels replaced by "no class" at this rate
  SamplingOptions sampling;    // what generate_images uses unless told otherwise
  int64_t sampling_batch = 500;  // rows denoised together while sampling (bounds memory)
};

class LatentDiffusion : public Module, public ImageToTokens, public TokensToImage, public LabelsToImage {
 public:
  // `vae` must make and take soft tokens (ImageToTokens / TokensToImage with channels > 0).
  LatentDiffusion(std::shared_ptr<Module> vae, const LatentDiffusionOptions& options, Generator& gen);

  // Images f32 [N, C, H, W] as the VAE takes them -> the VAE's latents [N, c, h, w] times latent_scale.
  Tensor latents(const Tensor& images);
  double latent_scale() const;
  void set_latent_scale(double scale);

  // The training objective for a batch: labels dropped to "no class" at class_dropout, a step t
  // and noise drawn per row from `gen`, MSE between the DiT's output and the target.
  Tensor denoising_loss(const Tensor& images, const Tensor& labels, Generator& gen);
  // The same at given latents x0, labels, steps and noise (no dropout): evaluation and tests.
  Tensor denoising_loss_at(const Tensor& x0, const Tensor& labels, const Tensor& steps, const Tensor& noise);

  // Scaled latents [N, c, h, w] sampled for `labels` (each in [0, num_classes]; num_classes = unconditional).
  Tensor sample_latents(const std::vector<int64_t>& labels, const SamplingOptions& options, Generator& gen);

  // Capabilities: the VAE's tokens (unscaled, as `tessera tokenize` of the VAE writes them) and
  // class-conditional sampling.
  TokenGrid token_grid(int64_t image_height, int64_t image_width) const override;
  Tensor tokenize(const Tensor& images) override;
  Tensor decode(const Tensor& tokens) override;
  int64_t num_classes() const override { return options_.dit.num_classes; }
  SamplingOptions default_sampling() const override { return options_.sampling; }
  Tensor generate_images(const std::vector<int64_t>& labels, const SamplingOptions& options, Generator& gen) override;

  const LatentDiffusionOptions& options() const { return options_; }
  const Diffusion& diffusion() const { return diffusion_; }

  std::shared_ptr<Module> vae;
  std::shared_ptr<DiT> dit;
  Tensor latent_scale_buffer;  // scalar; 0 until measured

 private:
  ImageToTokens& encoder() const;
  TokensToImage& decoder() const;
  // One guided model output at step t for the rows x (labels y).
  Tensor guided_output(const Tensor& x, const Tensor& labels, int64_t t, double guidance);

  LatentDiffusionOptions options_;
  Diffusion diffusion_;
};

}  // namespace tessera::nn
