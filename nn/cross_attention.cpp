#include "nn/cross_attention.h"

#include <cmath>

#include "autograd/error.h"
#include "autograd/ops.h"
#include "nn/init.h"

namespace tessera::nn {

MultiHeadCrossAttention::MultiHeadCrossAttention(int64_t dim_, int64_t memory_dim_, int64_t heads_, Generator& gen)
    : dim(dim_), memory_dim(memory_dim_), heads(heads_) {
  if (dim <= 0 || memory_dim <= 0 || heads <= 0 || dim % heads != 0)
    fail("MultiHeadCrossAttention: dim {} must split into {} heads (memory dim {})", dim, heads, memory_dim);
  q = register_module("q", std::make_shared<Linear>(dim, dim, true, gen));
  kv = register_module("kv", std::make_shared<Linear>(memory_dim, 2 * dim, true, gen));
  proj = register_module("proj", std::make_shared<Linear>(dim, dim, true, gen));
}

MultiHeadCrossAttention::KeysValues MultiHeadCrossAttention::keys_values(const Tensor& memory) const {
  if (!memory.defined() || memory.dim() != 3 || memory.size(2) != memory_dim)
    fail("cross-attention: the memory must be [B, M, {}], got {}", memory_dim,
         memory.defined() ? memory.shape_string() : "undefined");
  const int64_t b = memory.size(0), m = memory.size(1), d = dim / heads;
  const Tensor split = kv->forward(memory).reshape({b, m, 2, heads, d});
  // Contiguous [B, H, M, D]: a decoder reads them at every step.
  return {split.select(2, 0).permute({0, 2, 1, 3}).contiguous(), split.select(2, 1).permute({0, 2, 1, 3}).contiguous()};
}

Tensor MultiHeadCrossAttention::attend(const Tensor& x, const KeysValues& memory) const {
  if (!x.defined() || x.dim() != 3 || x.size(2) != dim)
    fail("cross-attention: queries must be [B, T, {}], got {}", dim, x.defined() ? x.shape_string() : "undefined");
  const int64_t b = x.size(0), t = x.size(1), d = dim / heads;
  if (memory.k.size(0) != b) fail("cross-attention: {} query rows but a memory of {}", b, memory.k.size(0));
  const Tensor queries = q->forward(x).reshape({b, t, heads, d}).permute({0, 2, 1, 3});
  const Tensor a = scaled_dot_product_attention(queries, memory.k, memory.v);  // [B, H, T, D]
  return proj->forward(a.permute({0, 2, 1, 3}).reshape({b, t, dim}));
}

GatedCrossAttentionBlock::GatedCrossAttentionBlock(int64_t dim, int64_t memory_dim, int64_t heads, double mlp_ratio,
                                                   double norm_eps, Generator& gen) {
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(dim, norm_eps));
  attn = register_module("attn", std::make_shared<MultiHeadCrossAttention>(dim, memory_dim, heads, gen));
  gate_attn = register_parameter("gate_attn", Tensor::zeros({1}));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(dim, norm_eps));
  mlp = register_module("mlp", std::make_shared<Mlp>(dim, int64_t(double(dim) * mlp_ratio), dim, 0.0, gen));
  gate_mlp = register_parameter("gate_mlp", Tensor::zeros({1}));
}

Tensor GatedCrossAttentionBlock::forward(const Tensor& h, const MultiHeadCrossAttention::KeysValues& memory) const {
  const Tensor x = h + tanh(gate_attn) * attn->attend(norm1->forward(h), memory);
  return x + tanh(gate_mlp) * mlp->forward(norm2->forward(x));
}

}  // namespace tessera::nn
