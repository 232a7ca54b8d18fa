#pragma once
// The two image-text alignment losses, each one fused op: L2-normalise both embedding sets,
// form the cosine-similarity matrix with one GEMM, scale it, and reduce it to the loss; the
// backward walks the same path in reverse with two GEMMs. Composing the same thing from
// elementwise ops would keep five [N, N] intermediates alive per step; this keeps one.
//
// Both take image embeddings a [N, D] and text embeddings b [N, D] where row i of a and row i of
// b are a pair, in f32 or f64 (the same dtype for every input).
//
// Positives: by default pair i's only positive is pair i. With `labels` (integer [N]) every pair
// of the same class counts as a positive too (the multi-positive option): with ten classes and a
// batch of 256 about 25 pairs in each row share a class, and the plain losses push them apart.
#include <cmath>

#include "autograd/tensor.h"

namespace tessera {

// CLIP's cap on the logit scale: exp(log_scale) is clamped at 100.
inline constexpr double kClipMaxLogitScale = 100.0;

struct InfoNceOptions {
  Tensor labels;  // optional integer [N]: same-class pairs are positives (targets spread uniformly)
  double max_logit_scale = kClipMaxLogitScale;
};

// Symmetric InfoNCE (CLIP): logits = min(exp(log_scale), max) * cos(a_i, b_j);
// loss = (CE(logits rows, targets) + CE(logits columns, targets)) / 2, each CE averaged over N.
// Targets are one-hot on the diagonal, or with labels uniform over the row's positives.
// log_scale is a one-element tensor (learnable; CLIP initialises it to log(1/0.07)). Where the
// clamp is active the scale passes no gradient, as torch.clamp.
Tensor info_nce_loss(const Tensor& a, const Tensor& b, const Tensor& log_scale, const InfoNceOptions& options = {});

struct SigmoidLossOptions {
  Tensor labels;  // optional integer [N]: same-class pairs get label +1
};

// SigLIP's pairwise sigmoid loss: logits = exp(log_t) * cos(a_i, b_j) + bias, z_ij = +1 for a
// positive pair and -1 otherwise; loss = -sum_ij log sigmoid(z_ij * logits_ij) / N.
// log_t (SigLIP: log 10) and bias (SigLIP: -10) are one-element tensors, both learnable.
Tensor sigmoid_pairwise_loss(const Tensor& a, const Tensor& b, const Tensor& log_t, const Tensor& bias,
                             const SigmoidLossOptions& options = {});

// Rows of x scaled to unit L2 norm (norm clamped below at 1e-12, as torch.nn.functional.normalize).
// Differentiable; what the dual encoders use for embeddings outside the losses (eval, export).
Tensor l2_normalize_rows(const Tensor& x);

// CLIP clamps the stored log scale into [0, log(max)] after every optimizer step; in place,
// outside autograd.
void clamp_log_scale_(Tensor& log_scale, double max_logit_scale = kClipMaxLogitScale);

}  // namespace tessera
