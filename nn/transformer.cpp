#include "nn/transformer.h"

#include <cmath>

#include "autograd/ops/dropout.h"
#include "autograd/error.h"
#include "autograd/ops.h"

namespace tessera::nn {

MultiHeadSelfAttention::MultiHeadSelfAttention(int64_t dim_, int64_t heads_, const Options& options_, Generator& gen)
    : dim(dim_), heads(heads_), options(options_) {
  if (heads <= 0 || dim <= 0 || dim % heads != 0)
    fail("MultiHeadSelfAttention: width {} does not split into {} heads", dim, heads);
  qkv = register_module("qkv", std::make_shared<Linear>(dim, 3 * dim, options.qkv_bias, gen));
  proj = register_module("proj", std::make_shared<Linear>(dim, dim, true, gen));
}

Tensor MultiHeadSelfAttention::forward(const Tensor& x, const Tensor& key_padding_mask, const Tensor& prefix_lengths) {
  if (x.dim() != 3 || x.size(2) != dim)
    fail("MultiHeadSelfAttention(dim {}): input {} is not [B, T, {}]", dim, x.shape_string(), dim);
  AttentionOptions o;
  o.causal = options.causal;
  o.key_padding_mask = key_padding_mask;
  o.prefix_lengths = prefix_lengths;
  // the Linear layers' own tensors through the fused op: same parameters, fewer passes
  const Tensor y = self_attention_qkv(fused_linear(x, qkv->weight, qkv->bias), heads, o);
  return dropout(fused_linear(y, proj->weight, proj->bias), options.proj_drop, is_training());
}

Mlp::Mlp(int64_t in, int64_t hidden, int64_t out, double drop_, Generator& gen) : drop(drop_) {
  fc1 = register_module("fc1", std::make_shared<Linear>(in, hidden, true, gen));
  fc2 = register_module("fc2", std::make_shared<Linear>(hidden, out, true, gen));
}

Tensor Mlp::forward(const Tensor& x) {
  const Tensor h = dropout(fused_linear(x, fc1->weight, fc1->bias, Activation::gelu_erf), drop, is_training());
  return dropout(fused_linear(h, fc2->weight, fc2->bias), drop, is_training());
}

Block::Block(int64_t dim, int64_t heads, const Options& o, Generator& gen) : drop_path(o.drop_path) {
  if (!(o.mlp_ratio > 0)) fail("Block: mlp_ratio must be positive, got {}", o.mlp_ratio);
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(dim, o.norm_eps));
  attn = register_module("attn", std::make_shared<MultiHeadSelfAttention>(
                                     dim, heads, MultiHeadSelfAttention::Options{o.qkv_bias, o.causal, o.drop}, gen));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(dim, o.norm_eps));
  const auto hidden = int64_t(std::llround(double(dim) * o.mlp_ratio));
  mlp = register_module("mlp", std::make_shared<Mlp>(dim, hidden, dim, o.drop, gen));
}

Tensor Block::forward(const Tensor& x, const Tensor& key_padding_mask, const Tensor& prefix_lengths) {
  const Tensor h = x + tessera::drop_path(attn->forward(norm1->forward(x), key_padding_mask, prefix_lengths), drop_path,
                                          is_training());
  return h + tessera::drop_path(mlp->forward(norm2->forward(h)), drop_path, is_training());
}

}  // namespace tessera::nn
