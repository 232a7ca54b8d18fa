#pragma once
// Dropout and stochastic depth. Masks come from a Philox generator, so a draw depends only on the
// generator's state, not on the thread count.
#include "autograd/random.h"
#include "autograd/tensor.h"

namespace tessera {

// In training: zeroes each element with probability p and scales the rest by 1 / (1 - p).
// Otherwise (or with p = 0) returns x unchanged.
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen = default_generator());

// Stochastic depth: as dropout, but one draw per sample (dim 0) zeroes or scales the whole sample.
Tensor drop_path(const Tensor& x, double p, bool training, Generator& gen = default_generator());

}  // namespace tessera
