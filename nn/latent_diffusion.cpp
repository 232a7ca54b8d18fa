#include "nn/latent_diffusion.h"

#include <algorithm>
#include <cmath>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops.h"

namespace tessera::nn {

LatentDiffusion::LatentDiffusion(std::shared_ptr<Module> vae_, const LatentDiffusionOptions& options, Generator& gen)
    : options_(options), diffusion_(options.schedule, options.target, options.timesteps) {
  if (!(options.class_dropout >= 0 && options.class_dropout < 1))
    fail("latent diffusion: class_dropout must be in [0, 1), got {}", options.class_dropout);
  if (options.sampling_batch < 1) fail("latent diffusion: sampling_batch must be >= 1");
  vae = register_module("vae", std::move(vae_));
  if (!capability<ImageToTokens>(*vae) || !capability<TokensToImage>(*vae))
    fail("latent diffusion: the VAE must turn images into soft tokens and back");
  dit = register_module("dit", std::make_shared<DiT>(options.dit, gen));
  latent_scale_buffer = register_buffer("latent_scale", Tensor::scalar(0));
}

ImageToTokens& LatentDiffusion::encoder() const { return *capability<ImageToTokens>(*vae); }
TokensToImage& LatentDiffusion::decoder() const { return *capability<TokensToImage>(*vae); }

double LatentDiffusion::latent_scale() const { return latent_scale_buffer.item(); }

void LatentDiffusion::set_latent_scale(double scale) {
  if (!(scale > 0 && std::isfinite(scale))) fail("latent diffusion: latent scale must be positive and finite, got {}", scale);
  latent_scale_buffer.data<float>()[0] = float(scale);
}

TokenGrid LatentDiffusion::token_grid(int64_t image_height, int64_t image_width) const {
  return encoder().token_grid(image_height, image_width);
}

Tensor LatentDiffusion::tokenize(const Tensor& images) { return encoder().tokenize(images); }
Tensor LatentDiffusion::decode(const Tensor& tokens) { return decoder().decode(tokens); }

Tensor LatentDiffusion::latents(const Tensor& images) {
  const double scale = latent_scale();
  if (!(scale > 0)) fail("latent diffusion: the latent scale has not been measured");
  NoGradGuard frozen;
  return (encoder().tokenize(images).permute({0, 3, 1, 2}) * scale).contiguous();  // [N, h, w, c] -> [N, c, h, w]
}

Tensor LatentDiffusion::denoising_loss_at(const Tensor& x0, const Tensor& labels, const Tensor& steps, const Tensor& noise) {
  const Tensor x_t = diffusion_.add_noise(x0, noise, steps);
  const Tensor target = diffusion_.training_target(x0, noise, steps);
  return mse_loss(dit->forward(x_t, steps.to(x0.dtype()), labels), target);
}

Tensor LatentDiffusion::denoising_loss(const Tensor& images, const Tensor& labels, Generator& gen) {
  if (!labels.defined() || labels.dim() != 1 || labels.size(0) != images.size(0))
    fail("latent diffusion: needs one class label per image ({} images)", images.size(0));
  const Tensor x0 = latents(images);
  const int64_t n = x0.size(0);
  // One stream of uniforms for the steps and the dropout, then the noise.
  const Tensor u = rand({2, n}, gen, DType::f64).contiguous();
  const double* uu = u.data<double>();
  const Tensor in = labels.contiguous().to(DType::i64);
  std::vector<int64_t> steps(static_cast<size_t>(n)), dropped(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) {
    steps[size_t(r)] = std::min<int64_t>(int64_t(uu[r] * double(diffusion_.steps())), diffusion_.steps() - 1);
    dropped[size_t(r)] = uu[n + r] < options_.class_dropout ? num_classes() : in.data<int64_t>()[r];
  }
  const Tensor noise = randn(x0.shape(), gen, x0.dtype());
  return denoising_loss_at(x0, Tensor::from_vector(dropped, {n}), Tensor::from_vector(steps, {n}), noise);
}

Tensor LatentDiffusion::guided_output(const Tensor& x, const Tensor& labels, int64_t t, double guidance) {
  const int64_t n = x.size(0);
  if (guidance == 1) return dit->forward(x, Tensor::full({n}, double(t)), labels);
  // Class-conditional and unconditional rows in one batch.
  const Tensor both = dit->forward(concat({x, x}, 0), Tensor::full({2 * n}, double(t)),
                                   concat({labels, Tensor::full({n}, double(num_classes()), DType::i64)}, 0));
  const Tensor cond = both.slice(0, 0, n), uncond = both.slice(0, n, 2 * n);
  return uncond + (cond - uncond) * guidance;
}

Tensor LatentDiffusion::sample_latents(const std::vector<int64_t>& labels, const SamplingOptions& options, Generator& gen) {
  for (const int64_t y : labels)
    if (y < 0 || y > num_classes()) fail("latent diffusion: class {} outside [0, {}]", y, num_classes());
  if (!std::isfinite(options.guidance)) fail("latent diffusion: guidance must be finite");
  NoGradGuard no_grad;
  const DiTConfig& c = options_.dit;
  const std::vector<int64_t> steps = diffusion_.sampling_steps(options.steps);
  std::vector<Tensor> parts;
  for (size_t start = 0; start < labels.size(); start += size_t(options_.sampling_batch)) {
    const size_t end = std::min(labels.size(), start + size_t(options_.sampling_batch));
    const auto n = int64_t(end - start);
    const Tensor y = Tensor::from_vector(std::vector<int64_t>(labels.begin() + long(start), labels.begin() + long(end)), {n});
    Tensor x = randn({n, c.in_channels, c.input_size, c.input_size}, gen);
    for (size_t i = 0; i < steps.size(); ++i) {
      const int64_t t = steps[i], t_prev = i + 1 < steps.size() ? steps[i + 1] : -1;
      const Tensor out = guided_output(x, y, t, options.guidance);
      if (options.ddpm) {
        const Tensor z = t_prev >= 0 ? randn(x.shape(), gen) : Tensor();
        x = diffusion_.ddpm_step(x, out, t, t_prev, z);
      } else {
        x = diffusion_.ddim_step(x, out, t, t_prev);
      }
    }
    parts.push_back(x);
  }
  return parts.size() == 1 ? parts[0] : concat(parts, 0);
}

Tensor LatentDiffusion::generate_images(const std::vector<int64_t>& labels, const SamplingOptions& options, Generator& gen) {
  for (const int64_t y : labels)
    if (y < 0 || y >= num_classes()) fail("latent diffusion: class {} outside [0, {})", y, num_classes());
  const Tensor z = sample_latents(labels, options, gen);
  NoGradGuard no_grad;
  return decoder().decode((z * (1.0 / latent_scale())).permute({0, 2, 3, 1}).contiguous());
}

}  // namespace tessera::nn
