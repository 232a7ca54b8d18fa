#pragma once
// Attention from one sequence over another, and LLaMA 3.2 Vision's gated cross-attention layer
// built on it (the `cross_attention` fusion of the vision-language model, issue 18).
//
// MultiHeadCrossAttention: queries from x [B, T, dim] (`q`, dim -> dim), keys and values from a
// memory [B, M, memory_dim] (`kv`, memory_dim -> 2*dim, k | v with the heads side by side, as the
// self-attention's qkv), scaled dot-product attention per head, then `proj`. A decoder computes the
// memory's keys and values once (keys_values) and attends with them at every step.
//
// GatedCrossAttentionBlock, inserted between a language model's self-attention blocks:
//   h += tanh(gate_attn) * XAttn(norm1(h), memory);  h += tanh(gate_mlp) * MLP(norm2(h))
// Both gates are scalars that start at 0: the layer is the identity at first, so a trained text LM
// with such layers added is still that LM until the gates open.
#include <memory>
#include <string>
#include <vector>

#include "autograd/random.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/transformer.h"

namespace tessera::nn {

class MultiHeadCrossAttention : public Module {
 public:
  MultiHeadCrossAttention(int64_t dim, int64_t memory_dim, int64_t heads, Generator& gen);

  struct KeysValues {
    Tensor k, v;  // [B, heads, M, head_dim] each
  };
  // memory [B, M, memory_dim] -> its keys and values.
  KeysValues keys_values(const Tensor& memory) const;
  // x [B, T, dim] -> [B, T, dim], attending over a memory's keys and values.
  Tensor attend(const Tensor& x, const KeysValues& memory) const;
  Tensor forward(const Tensor& x, const Tensor& memory) const { return attend(x, keys_values(memory)); }

  std::shared_ptr<Linear> q, kv, proj;
  int64_t dim, memory_dim, heads;
};

class GatedCrossAttentionBlock : public Module {
 public:
  GatedCrossAttentionBlock(int64_t dim, int64_t memory_dim, int64_t heads, double mlp_ratio, double norm_eps,
                           Generator& gen);
  Tensor forward(const Tensor& h, const MultiHeadCrossAttention::KeysValues& memory) const;
  Tensor forward(const Tensor& h, const Tensor& memory) const { return forward(h, attn->keys_values(memory)); }

  std::shared_ptr<LayerNorm> norm1, norm2;
  std::shared_ptr<MultiHeadCrossAttention> attn;
  std::shared_ptr<Mlp> mlp;
  Tensor gate_attn, gate_mlp;  // [1] each, 0 at the start
};

// The cross-attention layers in order, as children "0", "1", ...
class CrossBlockList : public Module {
 public:
  void append(std::shared_ptr<GatedCrossAttentionBlock> block) {
    items.push_back(register_module(std::to_string(items.size()), block));
  }
  std::vector<std::shared_ptr<GatedCrossAttentionBlock>> items;
};

}  // namespace tessera::nn
