#pragma once
// Batched matrix product (GEMM per batch entry).
#include "autograd/tensor.h"

namespace tessera {

// [..., M, K] @ [..., K, N] with broadcast batch dims; 1-D operands are not accepted.
Tensor matmul(const Tensor& a, const Tensor& b);

}  // namespace tessera
