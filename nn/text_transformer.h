#pragma once
// The text tower of a dual encoder (CLIP's text transformer): token embedding + learned
// positions -> pre-LN transformer blocks -> final LayerNorm -> one vector per text -> linear
// projection into the joint embedding space. Two ways to read a text out:
//   eos:  causal attention, the vector at the end-of-text token (CLIP): with a causal mask it is
//         the only position that has seen the whole text, and padding after it is never seen;
//   mean: bidirectional attention with padding masked out, the mean over the non-pad tokens.
// Parameter names: token_embedding.weight, positional_embedding, blocks.{i}.*, ln_final.*,
// text_projection.weight.
#include <memory>

#include "autograd/random.h"
#include "nn/embedding.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/vit.h"

namespace tessera::nn {

struct TextTransformerConfig {
  enum class Pooling { eos, mean };

  int64_t vocab_size = 259;  // data::ByteTokenizer's
  int64_t pad_id = 256;      // tokens masked out under mean pooling
  int64_t context = 48;
  int64_t width = 128;
  int64_t depth = 4;
  int64_t heads = 4;
  double mlp_ratio = 4;
  Pooling pooling = Pooling::eos;  // eos implies causal attention, mean bidirectional
  int64_t embed_dim = 128;         // projection output; 0 = no projection (width out)
  double norm_eps = 1e-5;

  void validate() const;  // throws naming the first inconsistent field
};

// CLIP's initialisation of a stack of pre-LN blocks: attention and MLP weights scaled by width, the
// residual output projections further by depth so that the residual stream does not grow with it;
// zero biases. The text transformer and the vision-language model's decoder share it.
void init_clip_blocks(const BlockList& blocks, int64_t width, Generator& gen);

class TextTransformer : public Module {
 public:
  TextTransformer(const TextTransformerConfig& config, Generator& gen);
  // ids: integer [B, T] with T <= context; eos_index: integer [B], where each row's EOS sits
  // (used by eos pooling; may be undefined under mean pooling). -> [B, embed_dim]
  Tensor forward(const Tensor& ids, const Tensor& eos_index);

  const TextTransformerConfig& config() const { return config_; }

  std::shared_ptr<Embedding> token_embedding;
  Tensor positional_embedding;  // [context, width]
  std::shared_ptr<BlockList> blocks;
  std::shared_ptr<LayerNorm> ln_final;
  std::shared_ptr<Linear> text_projection;  // null when embed_dim == 0

 private:
  TextTransformerConfig config_;
};

}  // namespace tessera::nn
