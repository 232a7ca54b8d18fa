#pragma once
// Sinusoidal features of real values — how a diffusion model sees its timestep (DDPM, DiT).
#include <cstdint>

#include "autograd/tensor.h"

namespace tessera {

// t [N] (f32 or f64) -> [N, dim]: [cos(t f_0) .. cos(t f_{h-1}), sin(t f_0) .. sin(t f_{h-1})] with
// h = dim / 2 and f_i = max_period^(-i / h) (DiT's timestep_embedding: cos first; dim even).
// Differentiable in t: d/dt cos(t f) = -f sin(t f), d/dt sin(t f) = f cos(t f).
Tensor sinusoidal_features(const Tensor& t, int64_t dim, double max_period = 10000);

}  // namespace tessera
