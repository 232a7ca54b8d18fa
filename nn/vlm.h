#pragma once
// A PaLI-3 / PaliGemma-style vision-language model: a language model that reads image tokens.
// How it reads them is VlmConfig::fusion; the default, prefix, is PaliGemma's:
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
// fusion cross_attention (LLaMA 3.2 Vision): the sequence is the text alone; the projected image
//   tokens are read by gated cross-attention layers (nn/cross_attention.h), one after every
//   cross_attention_every-th block, cross_blocks.{j}.*, gates at 0 so that the model starts as its
//   language model. The projector is not zero here: the gates hold the image back instead.
// fusion dual_token (LLaMA-VID): each image becomes 1 + content_grid^2 tokens before the text — a
//   context token guided by the prompt and pooled content tokens (nn/dual_token.h, dual_token.*),
//   in place of all its patch tokens; no projector (the compressor's projections replace it).
// fusion none: the language model alone, blind to the image (no visual.*, no projector): the
//   text-only LM a cross_attention model starts from, and the blind baseline of every metric.
// frames F > 1 (clips, LLaMA-VID's video case): a sample is F images, [B, F, C, H, W]. Each frame
//   goes through the tower alone; what the fusion reads of it (its projected patch tokens, or its
//   dual tokens) gets `frame_embedding`[f] added, so that the LM can tell the frames apart (the
//   cross-attention memory has no order of its own), and the frames' tokens follow each other in
//   frame order: F x N image positions with prefix, F x (1 + content_grid^2) with dual_token, an
//   F x N memory with cross_attention. Each frame's dual context token reads the same prompt.
#include <memory>

#include "autograd/random.h"
#include "nn/cross_attention.h"
#include "nn/dual_token.h"
#include "nn/embedding.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/vit.h"
#include "nn/vlm_vocabulary.h"

namespace tessera::nn {

struct VlmConfig {
  enum class Fusion { prefix, cross_attention, dual_token, none };

  Fusion fusion = Fusion::prefix;
  int64_t cross_attention_every = 1;  // cross_attention: a gated layer after blocks k-1, 2k-1, ...
  int64_t content_grid = 1;           // dual_token: content tokens per image side (1: one mean token)
  int64_t frames = 1;                 // images per sample: 1, or a clip of F frames
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

  // Image positions in the language model's sequence, before the text: the tower's patch tokens
  // with the prefix fusion, 1 + content_grid^2 dual tokens, none otherwise; times the frames.
  // Prefix lengths count them.
  int64_t image_tokens_count() const;
  // What image_tokens() gives per sample: every frame's patch tokens, F x N.
  int64_t memory_tokens_count() const;
  bool reads_images() const { return config_.fusion != VlmConfig::Fusion::none; }
  // The cross-attention layer that follows LM block `block`, or null.
  const GatedCrossAttentionBlock* cross_block_after(size_t block) const;
  // The image tower's attention (what the language model reads is its output): images [B, C, H, W]
  // (single frames, whatever model.frames), or clips [B, F, C, H, W] as B x F frames.
  ImageAttention image_attention(const Tensor& images) override;
  bool available() const override { return reads_images(); }  // fusion none has no tower
  // images f32 [B, C, H, W] (frames 1) or [B, F, C, H, W] -> what the fusion reads of each sample,
  // [B, F x N, width]: the tower's patch tokens, projected, plus their frame's embedding (what the
  // prefix fusion puts before the text, and what the cross-attention layers read); for dual_token
  // the tower's tokens themselves [B, F x N, image width], which the compressor reads with the
  // prompt. Fails under fusion none, and names the shape expected when images do not match.
  Tensor image_tokens(const Tensor& images);
  // The image positions of the sequence from image_tokens() and the text's embeddings [B, T, width]
  // (rows' prompts their first prompt_lengths[b] positions, BOS to SEP): [B, image_tokens_count(),
  // width], or undefined when the sequence holds no image. Dual tokens are made here, frame by frame.
  Tensor sequence_image_tokens(const Tensor& image_tokens, const Tensor& text,
                               const std::vector<int64_t>& prompt_lengths) const;
  // The whole sequence through the blocks. images may be undefined under fusion none.
  // ids: integer [B, T] (the text part, T <= text_context);
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
  std::shared_ptr<Linear> projector;        // null under fusion none and dual_token
  std::shared_ptr<DualTokenCompressor> dual_token;  // fusion dual_token only
  std::shared_ptr<Embedding> token_embedding;
  Tensor positional_embedding;  // [image_tokens_count() + text_context, width]
  Tensor frame_embedding;       // [frames, width], frames > 1 only
  std::shared_ptr<BlockList> blocks;
  std::shared_ptr<CrossBlockList> cross_blocks;  // fusion cross_attention only
  std::shared_ptr<LayerNorm> ln_final;
  std::shared_ptr<Linear> lm_head;

 private:
  Tensor hidden(const Tensor& images, const Tensor& ids, const Tensor& prefix_lengths);  // before ln_final
  // images as one batch of single frames [B x F, C, H, W], after checking them against `rows` samples.
  Tensor frames_of(const Tensor& images, int64_t rows) const;
  // [B x F, M, width] -> [B, F x M, width], each frame's M tokens plus its frame embedding.
  Tensor join_frames(const Tensor& per_frame) const;
  VlmConfig config_;
  VlmVocabulary vocabulary_;
};

}  // namespace tessera::nn
