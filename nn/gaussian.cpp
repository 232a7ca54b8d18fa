#include "nn/gaussian.h"

#include "autograd/error.h"
#include "autograd/ops.h"

namespace tessera::nn {

DiagonalGaussian DiagonalGaussian::from_moments(const Tensor& moments) {
  if (moments.dim() < 2 || moments.size(1) % 2 != 0)
    fail("DiagonalGaussian: moments {} need an even channel count (mean and logvar) in dim 1", moments.shape_string());
  const int64_t c = moments.size(1) / 2;
  return {moments.slice(1, 0, c), clamp(moments.slice(1, c, 2 * c), -30.0, 20.0)};
}

Tensor DiagonalGaussian::sample(Generator& gen) const {
  return reparameterize(mean, logvar, randn(mean.shape(), gen, mean.dtype()));
}

Tensor DiagonalGaussian::kl(KlReduction reduction) const { return gaussian_kl(mean, logvar, reduction); }

Tensor reparameterize(const Tensor& mean, const Tensor& logvar, const Tensor& noise) {
  if (mean.shape() != logvar.shape() || mean.shape() != noise.shape())
    fail("reparameterize: mean {}, logvar {} and noise {} must have one shape", mean.shape_string(),
         logvar.shape_string(), noise.shape_string());
  return mean + exp(logvar * 0.5) * noise;
}

Tensor gaussian_kl(const Tensor& mean, const Tensor& logvar, KlReduction reduction) {
  if (mean.shape() != logvar.shape() || mean.dim() < 1 || mean.size(0) == 0)
    fail("gaussian_kl: mean {} and logvar {} must have one non-empty shape", mean.shape_string(), logvar.shape_string());
  const Tensor per_element = square(mean) + exp(logvar) - 1.0 - logvar;
  const double n = double(reduction == KlReduction::sum ? mean.size(0) : mean.numel());
  return sum(per_element) * (0.5 / n);
}

}  // namespace tessera::nn
