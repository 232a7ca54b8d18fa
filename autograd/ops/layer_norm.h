#pragma once
// LayerNorm over the last axis, forward and backward each one pass over the rows.
#include "autograd/tensor.h"

namespace tessera {

// y = (x - mean) / sqrt(var + eps) * weight + bias over the last axis of x ([..., C]), with the
// population variance as PyTorch's LayerNorm. weight and bias are [C]; either may be undefined
// (no scale / no shift). The forward keeps the per-row mean and 1/std for the backward.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);

}  // namespace tessera
