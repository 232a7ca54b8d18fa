#pragma once
// The ops a transformer spends its time in, each with a hand-written backward that needs far
// less memory and time than the same thing built from elementwise ops: a Linear layer with its
// bias and activation fused, LayerNorm over the last axis, and scaled dot-product attention.
#include "autograd/tensor.h"
#include "kernels/bias_act.h"

namespace tessera {

using kernels::Activation;  // identity, relu, gelu_tanh, gelu_erf (PyTorch's exact GELU), silu

// y = act(x W^T + b) over the last axis of x ([..., in] -> [..., out]), W [out, in] as PyTorch
// stores it, b [out] or undefined. One GEMM and one fused bias+activation pass each way; the
// backward writes dW and db directly (no transposed copies) and keeps only the pre-activation.
Tensor fused_linear(const Tensor& x, const Tensor& weight, const Tensor& bias,
                    Activation activation = Activation::identity);

// y = (x - mean) / sqrt(var + eps) * weight + bias over the last axis of x ([..., C]), with the
// population variance as PyTorch's LayerNorm. weight and bias are [C]; either may be undefined
// (no scale / no shift). The forward keeps the per-row mean and 1/std for the backward.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);

struct AttentionOptions {
  // Query i sees keys j <= i only (top-left aligned when Tq != Tk, as PyTorch's is_causal).
  bool causal = false;
  // u8 or bool-like integer [B, Tk]; non-zero marks a padding key that no query may attend to
  // (PyTorch's key_padding_mask convention).
  Tensor key_padding_mask;
  // Logit scale; 0 means 1/sqrt(D).
  double scale = 0;
};

// softmax(q k^T * scale + mask) v, the softmax along keys.
// q [B, H, Tq, D], k [B, H, Tk, D], v [B, H, Tk, Dv] -> [B, H, Tq, Dv].
// Inputs may be strided views (e.g. q, k, v sliced out of one fused qkv projection) as long as
// their last dim is contiguous; nothing is copied for them. A query whose keys are all masked
// gets a zero output (PyTorch gives NaN there) and passes no gradient.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionOptions& options = {});

// Self-attention straight from a fused projection, as a transformer block uses it:
// qkv [B, T, 3*C] holds q | k | v along the last axis, each C = heads * D with the heads side by
// side (timm's layout). Returns [B, T, C] with the heads side by side again. The same numbers as
// splitting qkv, scaled_dot_product_attention and merging the heads, but the heads are read and
// written in place, and the backward writes d(qkv) directly: no copies either way.
Tensor self_attention_qkv(const Tensor& qkv, int64_t heads, const AttentionOptions& options = {});

}  // namespace tessera
