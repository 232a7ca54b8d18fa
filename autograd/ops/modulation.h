#pragma once
// Per-sample modulation of token sequences, as a diffusion transformer's adaLN-Zero conditions its
// blocks: each fused into one pass each way (kernels/modulation.h).
#include "autograd/tensor.h"

namespace tessera {

// layer_norm(x) * (1 + scale) + shift per sample: x [N, T, C], shift and scale [N, C]; the
// LayerNorm (population variance, eps) has no affine of its own. DiT's modulate(norm(x), shift,
// scale).
Tensor modulated_layer_norm(const Tensor& x, const Tensor& shift, const Tensor& scale, double eps);

// x + a * gate per sample: x and a [N, T, C], gate [N, C]. adaLN-Zero's gated residual add.
Tensor gated_add(const Tensor& x, const Tensor& a, const Tensor& gate);

}  // namespace tessera
