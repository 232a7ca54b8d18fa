#pragma once
// DiT (Peebles & Xie 2023): a transformer that denoises a grid of latents, conditioned on the
// diffusion timestep and a class label through adaptive LayerNorm with zero-initialised gates
// (adaLN-Zero). Parameter names follow facebookresearch/DiT (`x_embedder.proj.weight`,
// `t_embedder.mlp.0.weight`, `y_embedder.embedding_table.weight`, `blocks.0.adaLN_modulation.1.weight`,
// `final_layer.linear.weight`), so a PyTorch port reads a Tessera checkpoint by name.
//   x [N, C, H, W], t [N], y [N]  ->  patches + positions -> blocks(c = t_emb + y_emb) -> final layer
//   -> [N, C, H, W] (the noise, or v, as the diffusion objective trains it).
#include <memory>
#include <string>
#include <vector>

#include "autograd/random.h"
#include "nn/embedding.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/patch_embed.h"
#include "nn/transformer.h"

namespace tessera::nn {

struct DiTConfig {
  int64_t input_size = 7;      // latent grid side (square)
  int64_t in_channels = 4;     // latent channels
  int64_t patch_size = 1;      // latent cells per token side; must divide input_size
  int64_t width = 256;
  int64_t depth = 6;
  int64_t heads = 4;
  double mlp_ratio = 4;
  int64_t num_classes = 10;    // the label table has one more row: the "no class" label of guidance
  bool learned_pos_embed = false;  // false: fixed 2-D sin-cos table (a buffer)
  int64_t frequency_dim = 256;     // sinusoidal features of the timestep, before its MLP

  void validate() const;  // throws naming the first inconsistent field
};

// x * (1 + scale) + shift, with shift and scale [N, D] broadcast over the tokens of x [N, T, D]:
// how the conditioning enters each block (DiT's `modulate`). The blocks run it fused with the
// LayerNorm before it (modulated_layer_norm, autograd/ops/modulation.h); this composition is
// that op's reference.
Tensor modulate(const Tensor& x, const Tensor& shift, const Tensor& scale);

// Sinusoidal features of (real-valued) timesteps t [N] -> [N, dim]: [cos(t f_i), sin(t f_i)] with
// f_i = 10000^(-i / (dim/2)), i < dim/2 (DiT's order, cos first). Differentiable in t.
Tensor timestep_features(const Tensor& t, int64_t dim);

// Timestep -> [N, width]: sinusoidal features, then Linear, SiLU, Linear (`mlp.0`, `mlp.2`).
class TimestepEmbedder : public Module {
 public:
  TimestepEmbedder(int64_t width, int64_t frequency_dim, Generator& gen);
  Tensor forward(const Tensor& t);
  std::shared_ptr<Linear> fc1, fc2;
  int64_t frequency_dim;
};

// Class label -> [N, width]; label num_classes is "no class" (`embedding_table` [num_classes + 1, width]).
class LabelEmbedder : public Module {
 public:
  LabelEmbedder(int64_t num_classes, int64_t width, Generator& gen);
  Tensor forward(const Tensor& labels);
  std::shared_ptr<Embedding> embedding_table;  // as DiT's nn.Embedding: `embedding_table.weight`
  int64_t num_classes;
};

// The conditioning's SiLU then Linear(width, chunks * width), named `adaLN_modulation.1` as
// DiT's nn.Sequential(SiLU, Linear) is; zero at birth.
class AdaLNModulation : public Module {
 public:
  AdaLNModulation(int64_t width, int64_t chunks, Generator& gen);
  // c [N, width] -> `chunks` tensors [N, width].
  std::vector<Tensor> forward(const Tensor& c);
  std::shared_ptr<Linear> linear;
  int64_t chunks;
};

class DiTBlock : public Module {
 public:
  DiTBlock(int64_t width, int64_t heads, double mlp_ratio, Generator& gen);
  Tensor forward(const Tensor& x, const Tensor& c);
  std::shared_ptr<LayerNorm> norm1, norm2;
  std::shared_ptr<MultiHeadSelfAttention> attn;
  std::shared_ptr<Mlp> mlp;
  std::shared_ptr<AdaLNModulation> adaLN_modulation;
};

class DiTFinalLayer : public Module {
 public:
  DiTFinalLayer(int64_t width, int64_t out_features, Generator& gen);
  Tensor forward(const Tensor& x, const Tensor& c);
  std::shared_ptr<LayerNorm> norm_final;
  std::shared_ptr<Linear> linear;
  std::shared_ptr<AdaLNModulation> adaLN_modulation;
};

// The blocks as children "0", "1", ... (torch.nn.ModuleList's names).
class DiTBlockList : public Module {
 public:
  void append(std::shared_ptr<DiTBlock> block) { items.push_back(register_module(std::to_string(items.size()), block)); }
  std::vector<std::shared_ptr<DiTBlock>> items;
};

class DiT : public Module {
 public:
  DiT(const DiTConfig& config, Generator& gen);
  // x f32 [N, C, H, W], t f32 [N] (step indices as reals), y i64 [N] in [0, num_classes] -> [N, C, H, W].
  Tensor forward(const Tensor& x, const Tensor& t, const Tensor& y);
  const DiTConfig& config() const { return config_; }

  std::shared_ptr<PatchEmbed> x_embedder;
  Tensor pos_embed;  // [1, T, width]
  std::shared_ptr<TimestepEmbedder> t_embedder;
  std::shared_ptr<LabelEmbedder> y_embedder;
  std::shared_ptr<DiTBlockList> blocks;
  std::shared_ptr<DiTFinalLayer> final_layer;

 private:
  DiTConfig config_;
};

}  // namespace tessera::nn
