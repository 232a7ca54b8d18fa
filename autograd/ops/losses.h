#pragma once
// Loss functions. Each returns a scalar (mean over the batch) and is differentiable in its
// prediction argument; targets never receive gradients.
#include "autograd/tensor.h"

namespace tessera {

// Cross-entropy of logits [B, C] against integer class targets [B] (i64 or i32), averaged over
// the batch, as torch.nn.functional.cross_entropy. With label_smoothing = s the target
// distribution is (1 - s) on the true class plus s / C on every class. Forward and backward are
// fused: one log-softmax pass forward, and d loss / d logits = (softmax - target) / B backward.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, double label_smoothing = 0);

// Mean squared error over every element; prediction and target must have the same shape.
Tensor mse_loss(const Tensor& prediction, const Tensor& target);

}  // namespace tessera
