#pragma once
// The ops quantizers are made of: a nearest-code search (one GEMM per block of rows), a codebook
// lookup whose gradient scatters back into the codebook, and the two straight-through estimators
// (a value that passes its gradient to another tensor unchanged, and rounding with an identity
// gradient). Vector quantizers and FSQ in nn/ are compositions of these and the ops in ops.h.
#include <cstdint>
#include <vector>

#include "autograd/tensor.h"

namespace tessera {

// For each row of z [M, D], the index of the nearest row of codebook [K, D] in squared Euclidean
// distance, found as argmin_k (|e_k|^2 - 2 z.e_k) from one GEMM per block of rows; ties go to
// the lowest index. Returns i64 [M]. With `squared_distance`, also fills f32/f64 [M] with the
// distance to the chosen code (|z|^2 added back, clamped at 0). No gradient.
Tensor nearest_code(const Tensor& z, const Tensor& codebook, Tensor* squared_distance = nullptr);

// Rows of codebook [K, D] picked by integer indices [...] -> [..., D]. The gradient is added
// back into the picked rows (rows picked twice get both contributions). An index outside
// [0, K) is an error that names it.
Tensor lookup_codes(const Tensor& codebook, const Tensor& indices);

// Returns `value` in the forward pass and hands the gradient of the result to `x` unchanged:
// x + stop_gradient(value - x) in one op (the VQ-VAE straight-through estimator). `value` gets
// no gradient. Shapes and dtypes must match.
Tensor straight_through(const Tensor& x, const Tensor& value);

// Rounds to the nearest integer (halves to even, as torch.round) with an identity gradient.
Tensor round_ste(const Tensor& x);

// Codes used by i64/i32 indices in [0, K): counts [K] (i64). An index out of range is an error.
std::vector<int64_t> code_counts(const Tensor& indices, int64_t codebook_size);

}  // namespace tessera
