#pragma once
// Indexing ops (picking, gathering, selecting by a mask) and comparisons.
#include "autograd/tensor.h"

namespace tessera {

// ---- indexing ----
// Rows of x along `dim` picked by a 1-D integer index.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// out[..., i, ...] = x[..., index[..., i, ...], ...] along dim (index has x's rank).
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// weight [V, D], ids integer [...] -> [..., D]
Tensor embedding(const Tensor& weight, const Tensor& ids);
// cond is u8 (non-zero = take a); a, b and cond broadcast together.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

// ---- comparisons (no gradient; u8 results) ----
Tensor greater(const Tensor& a, const Tensor& b);
Tensor equal(const Tensor& a, const Tensor& b);

}  // namespace tessera
