#pragma once
// Group normalisation (Wu & He, 2018) as torch.nn.functional.group_norm.
#include <cstdint>

#include "autograd/tensor.h"

namespace tessera {

// x [N, C, *] is normalised over each group of C / num_groups channels and all positions, with the
// population variance, then scaled and shifted per channel by weight and bias ([C], or undefined
// for none).
Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight = Tensor(), const Tensor& bias = Tensor(),
                  double eps = 1e-5);

}  // namespace tessera
