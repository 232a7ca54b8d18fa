#pragma once
// A PaLI-3 / PaliGemma-style vision-language model: a language model that reads image tokens.
//   images -> the image tower (a SigLIP ViT trunk: every patch token after its final norm, no
//   pooling) -> `projector`, a linear map to the LM width, zero-initialised so that training starts
//   from a language model that ignores the image and lets the image in as it learns
//   -> [image tokens][BOS prefix SEP][suffix EOS] -> a decoder-only pre-LN transformer with a
//   prefix-LM mask: full attention over the image, the prefix and SEP; causal over the suffix
//   -> final LayerNorm -> `lm_head` over the vocabulary (nn/vlm_vocabulary.h).
// The loss is next-token cross-entropy on the suffix (and its EOS) only. Parameter names:
//   visual.* (the SigLIP checkpoint's image tower, so stage 1 loads by name), projector.*,
//   token_embedding.weight, positional_embedding [N + text_context, W] (one table for the whole
//   sequence), blocks.{i}.* (as the ViT's), ln_final.*, lm_head.weight.
#include <memory>

#include "autograd/random.h"
#include "nn/embedding.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/vit.h"
#include "nn/vlm_vocabulary.h"

namespace tessera::nn {

struct VlmConfig {
  ViTConfig image;            // the image tower; num_classes is ignored (no head)
  bool freeze_image = false;  // the tower runs without gradients (PaLI-3's first stage)
  int64_t width = 192;        // the language model's
  int64_t depth = 4;
  int64_t heads = 3;
  double mlp_ratio = 4;
  int64_t text_context = 160;  // text tokens per sequence, BOS to EOS
  int64_t location_bins = 64;
  double norm_eps = 1e-5;
  // The loss's average: over all scored tokens of the batch (false), or each sequence's mean, then
  // the mean over sequences (true) — so a two-token answer weighs as much as a forty-token caption.
  bool loss_per_sequence = false;

  int64_t vocab_size() const { return VlmVocabulary::kFirstLocation + location_bins; }
  void validate() const;  // throws naming the first inconsistent field
};

class VisionLanguageModel : public Module, public ImageToAttention {
 public:
  VisionLanguageModel(const VlmConfig& config, Generator& gen);

  int64_t image_tokens_count() const { return visual->num_patches(); }
  // The image tower's attention (what the language model reads is its output).
  ImageAttention image_attention(const Tensor& images) override { return visual->attention(images); }
  // images f32 [B, C, H, W] -> [B, N, width]: the tower's patch tokens, projected.
  Tensor image_tokens(const Tensor& images);
  // The whole sequence through the blocks. ids: integer [B, T] (the text part, T <= text_context);
  // prefix_lengths: integer [B], the positions (image tokens included) that attend both ways.
  // -> [B, T, width] after the final LayerNorm, text positions only.
  Tensor text_states(const Tensor& images, const Tensor& ids, const Tensor& prefix_lengths);
  // -> [B, T, vocab]: row t predicts token t + 1.
  Tensor logits(const Tensor& images, const Tensor& ids, const Tensor& prefix_lengths);
  // Next-token cross-entropy over the targets that are >= 0 (targets: integer [B, T], -1 or any
  // negative value = not scored), averaged as config().loss_per_sequence says. The head only runs at
  // the scored positions.
  Tensor loss(const Tensor& images, const Tensor& ids, const Tensor& prefix_lengths, const Tensor& targets);

  const VlmConfig& config() const { return config_; }
  const VlmVocabulary& vocabulary() const { return vocabulary_; }

  std::shared_ptr<VisionTransformer> visual;
  std::shared_ptr<Linear> projector;
  std::shared_ptr<Embedding> token_embedding;
  Tensor positional_embedding;  // [N + text_context, width]
  std::shared_ptr<BlockList> blocks;
  std::shared_ptr<LayerNorm> ln_final;
  std::shared_ptr<Linear> lm_head;

 private:
  Tensor hidden(const Tensor& images, const Tensor& ids, const Tensor& prefix_lengths);  // before ln_final
  VlmConfig config_;
  VlmVocabulary vocabulary_;
};

}  // namespace tessera::nn
