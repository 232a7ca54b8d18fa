#pragma once
// A Linear layer with its bias and activation fused: one GEMM and one fused bias+activation pass
// each way, with a hand-written backward that needs far less memory and time than the same thing
// built from elementwise ops.
#include "autograd/tensor.h"
#include "kernels/activation.h"

namespace tessera {

using kernels::Activation;  // the one vocabulary of kernels/activation.h

// y = act(x W^T + b) over the last axis of x ([..., in] -> [..., out]), W [out, in] as PyTorch
// stores it, b [out] or undefined. The backward writes dW and db directly (no transposed copies)
// and keeps only the pre-activation.
Tensor fused_linear(const Tensor& x, const Tensor& weight, const Tensor& bias,
                    Activation activation = Activation::identity);

}  // namespace tessera
