#pragma once
// The VAE's diagonal Gaussian posterior q(z | x) = N(mean, exp(logvar)): sampling by the
// reparameterisation z = mean + exp(logvar / 2) * eps (eps from a seeded Philox generator, so a
// run is reproducible), and its KL divergence from the standard normal prior.
#include "autograd/random.h"
#include "autograd/tensor.h"

namespace tessera::nn {

// KL(q || N(0, I)) per element is 0.5 (mean^2 + exp(logvar) - 1 - logvar). `sum` adds it over an
// example's latent values and averages over the batch (dim 0), the scale of the ELBO; `mean`
// averages over every latent value, the scale of a per-pixel MSE.
enum class KlReduction { sum, mean };

struct DiagonalGaussian {
  Tensor mean;    // the soft tokens
  Tensor logvar;  // same shape, clamped to [-30, 20] as diffusers/taming do, for stable exp

  // Splits moments [N, 2c, ...] along dim 1 into mean (first c) and logvar (last c).
  static DiagonalGaussian from_moments(const Tensor& moments);

  Tensor sample(Generator& gen) const;
  Tensor kl(KlReduction reduction) const;
};

// The same two formulas as free functions, for gradient checks.
Tensor reparameterize(const Tensor& mean, const Tensor& logvar, const Tensor& noise);
Tensor gaussian_kl(const Tensor& mean, const Tensor& logvar, KlReduction reduction = KlReduction::sum);

}  // namespace tessera::nn
