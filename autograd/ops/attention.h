#pragma once
// Scaled dot-product attention with a hand-written backward (three small GEMMs and a row softmax
// per batch and head), reading q, k, v in place through their strides.
#include "autograd/tensor.h"

namespace tessera {

struct AttentionOptions {
  // Query i sees keys j <= i only (top-left aligned when Tq != Tk, as PyTorch's is_causal).
  bool causal = false;
  // u8 or bool-like integer [B, Tk]; non-zero marks a padding key that no query may attend to
  // (PyTorch's key_padding_mask convention).
  Tensor key_padding_mask;
  // Prefix-LM (PaliGemma): integer [B] (any integer dtype), each in [0, Tk]; needs causal = true.
  // Query i of batch b sees key j iff j < prefix_lengths[b] or j <= i: bidirectional over the
  // prefix, causal after it. 0 is plain causal, Tk is no causal mask at all. Combines with
  // key_padding_mask (a padding key stays hidden).
  Tensor prefix_lengths;
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
