#pragma once
// The pre-LN transformer encoder pieces, named as timm's ViT so that parameter names match
// (`blocks.0.attn.qkv.weight`, `blocks.0.mlp.fc1.weight`, `blocks.0.norm1.weight`):
//   Block:  x = x + drop_path(attn(norm1(x)));  x = x + drop_path(mlp(norm2(x)))
#include <memory>

#include "autograd/random.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"

namespace tessera::nn {

// Multi-head self-attention over [B, T, dim]: one fused projection `qkv` (dim -> 3*dim, q | k | v
// with the heads side by side), scaled dot-product attention per head, then `proj` (dim -> dim).
class MultiHeadSelfAttention : public UnaryModule {
 public:
  struct Options {
    bool qkv_bias = true;
    bool causal = false;     // each token sees itself and the tokens before it only
    double proj_drop = 0;    // dropout after the output projection
  };
  MultiHeadSelfAttention(int64_t dim, int64_t heads, const Options& options, Generator& gen);
  Tensor forward(const Tensor& x) override { return forward(x, Tensor()); }
  // key_padding_mask: integer [B, T], non-zero marks padding tokens no query may attend to.
  // prefix_lengths (causal only): integer [B]; token i of row b also sees every token j <
  // prefix_lengths[b] — a prefix-LM (AttentionOptions::prefix_lengths).
  Tensor forward(const Tensor& x, const Tensor& key_padding_mask, const Tensor& prefix_lengths = Tensor());

  std::shared_ptr<Linear> qkv, proj;
  int64_t dim, heads;
  Options options;
};

// fc1 -> GELU (exact, erf) -> dropout -> fc2 -> dropout.
class Mlp : public UnaryModule {
 public:
  Mlp(int64_t in_features, int64_t hidden_features, int64_t out_features, double drop, Generator& gen);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<Linear> fc1, fc2;
  double drop;
};

class Block : public UnaryModule {
 public:
  struct Options {
    double mlp_ratio = 4;
    bool qkv_bias = true;
    bool causal = false;
    double drop = 0;       // dropout in the attention projection and the MLP
    double drop_path = 0;  // stochastic depth of each residual branch
    double norm_eps = 1e-6;
  };
  Block(int64_t dim, int64_t heads, const Options& options, Generator& gen);
  Tensor forward(const Tensor& x) override { return forward(x, Tensor()); }
  Tensor forward(const Tensor& x, const Tensor& key_padding_mask, const Tensor& prefix_lengths = Tensor());

  std::shared_ptr<LayerNorm> norm1, norm2;
  std::shared_ptr<MultiHeadSelfAttention> attn;
  std::shared_ptr<Mlp> mlp;
  double drop_path;
};

}  // namespace tessera::nn
