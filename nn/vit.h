#pragma once
// Vision Transformer (Dosovitskiy et al.), laid out and initialised as timm's
// VisionTransformer so that parameter names and shapes match it:
//   cls_token [1, 1, W], pos_embed [1, 1 + N, W], patch_embed.proj.{weight,bias},
//   blocks.{i}.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}, norm, head.
// With stem = conv the patch projection is a stack of strided convolutions instead
// (nn/conv_stem.h, patch_embed.proj.{0,2,..}.{weight,bias}), which timm's ViT has no name for.
// images [B, C, H, W] -> patch tokens -> (+ CLS) -> + position embedding -> pre-LN blocks ->
// final LayerNorm -> pooled (CLS token or mean of the patch tokens) -> optional linear head.
#include <memory>
#include <string>
#include <vector>

#include "autograd/random.h"
#include "nn/capabilities.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/patch_embed.h"
#include "nn/transformer.h"

namespace tessera::nn {

struct ViTConfig {
  enum class Pooling { cls, avg };  // cls: a learned CLS token is prepended and read out
  enum class PosEmbed { learned, sincos };  // sincos: fixed 2-D sin-cos table (a buffer)
  enum class Stem { patch, conv };  // patch: one linear map per patch; conv: strided 3x3 convolutions

  int64_t image_size = 28;
  int64_t patch_size = 4;
  int64_t channels = 1;
  int64_t width = 192;
  int64_t depth = 6;
  int64_t heads = 3;
  double mlp_ratio = 4;
  Pooling pooling = Pooling::cls;
  PosEmbed pos_embed = PosEmbed::learned;
  Stem stem = Stem::patch;  // conv needs a power-of-two patch_size
  int64_t num_classes = 10;  // 0 = no head
  double dropout = 0;        // after the position embedding, in attention projections and MLPs
  double drop_path = 0;      // stochastic depth, rising linearly from 0 to this over the blocks
  bool qkv_bias = true;
  double norm_eps = 1e-6;

  // Throws a tessera::Error naming the first inconsistent field.
  void validate() const;
};

struct ViTOutput {
  Tensor tokens;  // [B, N, width] patch tokens after the final norm (CLS excluded)
  Tensor pooled;  // [B, width]: the CLS token, or the mean of the patch tokens
  Tensor logits;  // [B, num_classes]; undefined without a head
};

// The blocks in order, as children "0", "1", ... (what torch.nn.ModuleList names them).
class BlockList : public Module {
 public:
  void append(std::shared_ptr<Block> block) { items.push_back(register_module(std::to_string(items.size()), block)); }
  std::vector<std::shared_ptr<Block>> items;
};

class VisionTransformer : public Module {
 public:
  VisionTransformer(const ViTConfig& config, Generator& gen);
  ViTOutput forward(const Tensor& images);
  // The forward pass again, keeping each block's attention weights (averaged over heads).
  ImageAttention attention(const Tensor& images);

  const ViTConfig& config() const { return config_; }
  int64_t num_patches() const { return patch_embed->num_patches(); }

  std::shared_ptr<PatchStem> patch_embed;  // a PatchEmbed or a ConvPatchStem
  Tensor cls_token;  // undefined with average pooling
  Tensor pos_embed;  // a parameter (learned) or a buffer (sincos)
  std::shared_ptr<BlockList> blocks;
  std::shared_ptr<LayerNorm> norm;
  std::shared_ptr<Linear> head;  // null when num_classes == 0

 private:
  ViTConfig config_;
};

// A VisionTransformer seen as one module from images to logits (or to the pooled embedding when
// it has no head), which is what a classification task trains. It holds the ViT's submodules and
// parameters under the very same names (`blocks.0.attn.qkv.weight`, not `vit.blocks...`), so its
// checkpoints are the ViT's.
class ViTClassifier : public UnaryModule,
                      public ImageToLogits,
                      public ImageToPatchTokens,
                      public ImageToEmbedding,
                      public ImageToAttention {
 public:
  ViTClassifier(const ViTConfig& config, Generator& gen);
  Tensor forward(const Tensor& images) override;
  VisionTransformer& vit() { return *vit_; }

  Tensor logits(const Tensor& images) override { return forward(images); }
  // Patch tokens after the final norm (CLS excluded) and the pooled embedding.
  int64_t num_patches() const override { return vit_->num_patches(); }
  int64_t token_width() const override { return vit_->config().width; }
  PatchTokens patch_tokens(const Tensor& images) override;
  // The pooled embedding (CLS token or mean of the patch tokens), not normalised.
  int64_t image_embedding_dim() const override { return vit_->config().width; }
  std::string image_embedding_description() const override;
  Tensor embed_images(const Tensor& images) override { return vit_->forward(images).pooled; }
  ImageAttention image_attention(const Tensor& images) override { return vit_->attention(images); }

 protected:
  void on_mode_change() override { vit_->train(is_training()); }

 private:
  std::shared_ptr<VisionTransformer> vit_;
};

// The 2-D sin-cos position table [grid*grid, dim] (MAE's): the first half of the channels
// encodes the column, the second half the row, each as sin | cos of position * 10000^(-k/(dim/4)).
// dim must be a multiple of 4.
Tensor sincos_position_embedding_2d(int64_t grid, int64_t dim);

}  // namespace tessera::nn
