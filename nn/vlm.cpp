#include "nn/vlm.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops.h"
#include "nn/init.h"
#include "nn/text_transformer.h"

namespace tessera::nn {

void VlmConfig::validate() const {
  if (fusion != Fusion::none) image.validate();
  if (width < 1 || depth < 0) fail("VLM: lm width {} / depth {} invalid", width, depth);
  if (fusion == Fusion::dual_token &&
      (content_grid < 1 || image.patch_size <= 0 || (image.image_size / image.patch_size) % content_grid != 0))
    fail("VLM: content_grid {} must divide the image's {}-token side", content_grid,
         image.patch_size > 0 ? image.image_size / image.patch_size : 0);
  if (fusion == Fusion::cross_attention && (cross_attention_every < 1 || cross_attention_every > depth))
    fail("VLM: cross_attention_every must be in [1, lm depth {}] (a cross-attention layer after every k-th block), "
         "got {}", depth, cross_attention_every);
  if (heads < 1 || width % heads != 0) fail("VLM: lm width {} does not split into {} heads", width, heads);
  if (!(mlp_ratio > 0)) fail("VLM: lm mlp_ratio must be positive, got {}", mlp_ratio);
  if (text_context < 3) fail("VLM: text_context must hold at least BOS, SEP and EOS (3), got {}", text_context);
  if (location_bins < 1 || location_bins > 10000) fail("VLM: loc_bins must be in [1, 10000], got {}", location_bins);
  if (frames < 1 || frames > 64) fail("VLM: frames must be in [1, 64] (images per sample), got {}", frames);
}

VisionLanguageModel::VisionLanguageModel(const VlmConfig& c, Generator& gen) : config_(c), vocabulary_(c.location_bins) {
  c.validate();
  if (reads_images()) {
    ViTConfig image = c.image;
    image.num_classes = 0;
    visual = register_module("visual", std::make_shared<VisionTransformer>(image, gen));
    if (c.fusion == VlmConfig::Fusion::dual_token)
      dual_token = register_module(
          "dual_token", std::make_shared<DualTokenCompressor>(image.width, c.width, visual->patch_embed->grid,
                                                              c.content_grid, gen));
    else
      projector = register_module("projector", std::make_shared<Linear>(image.width, c.width, true, gen));
  }
  token_embedding = register_module("token_embedding", std::make_shared<Embedding>(c.vocab_size(), c.width, gen));
  positional_embedding =
      register_parameter("positional_embedding", Tensor::zeros({image_tokens_count() + c.text_context, c.width}));
  if (c.frames > 1 && reads_images()) frame_embedding = register_parameter("frame_embedding", Tensor::zeros({c.frames, c.width}));
  blocks = register_module("blocks", std::make_shared<BlockList>());
  Block::Options bo;
  bo.mlp_ratio = c.mlp_ratio;
  bo.causal = true;  // with prefix_lengths: the prefix-LM mask
  bo.norm_eps = c.norm_eps;
  for (int64_t i = 0; i < c.depth; ++i) blocks->append(std::make_shared<Block>(c.width, c.heads, bo, gen));
  if (c.fusion == VlmConfig::Fusion::cross_attention) {
    cross_blocks = register_module("cross_blocks", std::make_shared<CrossBlockList>());
    for (int64_t i = 0; i < c.depth / c.cross_attention_every; ++i)
      cross_blocks->append(
          std::make_shared<GatedCrossAttentionBlock>(c.width, c.width, c.heads, c.mlp_ratio, c.norm_eps, gen));
  }
  ln_final = register_module("ln_final", std::make_shared<LayerNorm>(c.width, c.norm_eps));
  lm_head = register_module("lm_head", std::make_shared<Linear>(c.width, c.vocab_size(), false, gen));

  // With the prefix fusion the projector starts at zero (the LM first learns the text, then lets
  // the image in); with cross-attention the zero gates do that, and a zero projector would leave
  // the gates nothing to open on. The LM is initialised as the text transformer: small embeddings,
  // CLIP's block initialisation, which the cross-attention layers follow.
  if (c.fusion == VlmConfig::Fusion::prefix) {
    init::zeros_(projector->weight);
    init::zeros_(projector->bias);
  }
  init::normal_(token_embedding->weight, 0, 0.02, gen);
  init::normal_(positional_embedding, 0, 0.01, gen);
  if (frame_embedding.defined()) init::normal_(frame_embedding, 0, 0.01, gen);
  init_clip_blocks(*blocks, c.width, gen);
  const double attn_std = std::pow(double(c.width), -0.5);
  init::normal_(lm_head->weight, 0, attn_std, gen);
  if (cross_blocks) {
    const double proj_std = attn_std * std::pow(2.0 * double(std::max<int64_t>(c.depth, 1)), -0.5);
    const double fc_std = std::pow(2.0 * double(c.width), -0.5);
    for (const auto& b : cross_blocks->items) {
      init::normal_(b->attn->q->weight, 0, attn_std, gen);
      init::normal_(b->attn->kv->weight, 0, attn_std, gen);
      init::normal_(b->attn->proj->weight, 0, proj_std, gen);
      init::normal_(b->mlp->fc1->weight, 0, fc_std, gen);
      init::normal_(b->mlp->fc2->weight, 0, proj_std, gen);
      for (Tensor* bias : {&b->attn->q->bias, &b->attn->kv->bias, &b->attn->proj->bias, &b->mlp->fc1->bias,
                           &b->mlp->fc2->bias})
        init::zeros_(*bias);
    }
  }
}

int64_t VisionLanguageModel::image_tokens_count() const {
  if (config_.fusion == VlmConfig::Fusion::prefix) return config_.frames * visual->num_patches();
  if (config_.fusion == VlmConfig::Fusion::dual_token) return config_.frames * dual_token->tokens();
  return 0;
}

int64_t VisionLanguageModel::memory_tokens_count() const {
  return reads_images() ? config_.frames * visual->num_patches() : 0;
}

Tensor VisionLanguageModel::frames_of(const Tensor& images, int64_t rows) const {
  const ViTConfig& im = config_.image;
  const int64_t f = config_.frames;
  const Shape one{im.channels, im.image_size, im.image_size};
  const bool clip = images.defined() && images.dim() == 5 && images.size(1) == f && f > 1;
  const bool single = images.defined() && images.dim() == 4 && f == 1;
  const int64_t offset = clip ? 2 : 1;
  if ((!clip && !single) || images.size(0) != rows || images.size(offset) != one[0] ||
      images.size(offset + 1) != one[1] || images.size(offset + 2) != one[2]) {
    const std::string expected = f == 1 ? fmt::format("[{}, {}, {}, {}]", rows, one[0], one[1], one[2])
                                        : fmt::format("[{}, {}, {}, {}, {}] ({} frames per sample)", rows, f, one[0],
                                                      one[1], one[2], f);
    fail("VLM: images {} do not match the model: expected {}", images.defined() ? images.shape_string() : "undefined",
         expected);
  }
  return clip ? images.reshape({rows * f, one[0], one[1], one[2]}) : images;
}

Tensor VisionLanguageModel::join_frames(const Tensor& per_frame) const {
  const int64_t f = config_.frames;
  if (f == 1) return per_frame;
  const int64_t b = per_frame.size(0) / f, m = per_frame.size(1), w = per_frame.size(2);
  return (per_frame.reshape({b, f, m, w}) + frame_embedding.reshape({f, 1, w})).reshape({b, f * m, w});
}

Tensor VisionLanguageModel::sequence_image_tokens(const Tensor& image_tokens, const Tensor& text,
                                                  const std::vector<int64_t>& prompt_lengths) const {
  if (config_.fusion == VlmConfig::Fusion::prefix) return image_tokens;
  if (config_.fusion != VlmConfig::Fusion::dual_token) return Tensor();
  const int64_t f = config_.frames;
  if (f == 1) return dual_token->forward(image_tokens, text, prompt_lengths);
  // Every frame of a row reads that row's prompt: the text and its lengths repeated per frame.
  const int64_t b = image_tokens.size(0), n = visual->num_patches();
  std::vector<int64_t> rows, prompts;
  for (int64_t r = 0; r < b; ++r)
    for (int64_t i = 0; i < f; ++i) rows.push_back(r), prompts.push_back(prompt_lengths.at(size_t(r)));
  const Tensor frames = image_tokens.reshape({b * f, n, image_tokens.size(2)});
  const Tensor repeated = index_select(text, 0, Tensor::from_vector(rows, {b * f}));
  return join_frames(dual_token->forward(frames, repeated, prompts));
}

const GatedCrossAttentionBlock* VisionLanguageModel::cross_block_after(size_t block) const {
  if (!cross_blocks) return nullptr;
  const auto k = size_t(config_.cross_attention_every);
  if ((block + 1) % k != 0 || (block + 1) / k > cross_blocks->items.size()) return nullptr;
  return cross_blocks->items[(block + 1) / k - 1].get();
}

ImageAttention VisionLanguageModel::image_attention(const Tensor& images) {
  if (!reads_images()) fail("VLM: a model with fusion none has no image tower");
  // Single frames (of a clip model too: the tower reads frames one by one), or clips frame by frame.
  if (images.defined() && images.dim() == 4) return visual->attention(images);
  return visual->attention(frames_of(images, images.defined() ? images.size(0) : 0));
}

Tensor VisionLanguageModel::image_tokens(const Tensor& images) {
  if (!reads_images()) fail("VLM: a model with fusion none reads no image (it has no image tower)");
  const Tensor frames = frames_of(images, images.defined() ? images.size(0) : 0);
  Tensor tokens;
  if (config_.freeze_image) {
    NoGradGuard frozen;
    tokens = visual->forward(frames).tokens.detach();
  } else {
    tokens = visual->forward(frames).tokens;
  }
  if (!projector) {  // dual tokens: the frames' own tokens, side by side; the compressor adds the frames' embeddings
    const int64_t b = images.size(0);
    return tokens.reshape({b, config_.frames * tokens.size(1), tokens.size(2)});
  }
  return join_frames(projector->forward(tokens));
}

Tensor VisionLanguageModel::hidden(const Tensor& images, const Tensor& ids, const Tensor& prefix_lengths) {
  if (!ids.defined() || ids.dim() != 2 || is_floating(ids.dtype()))
    fail("VLM: token ids must be integer [B, T], got {}", ids.defined() ? ids.shape_string() : "undefined");
  if (reads_images()) frames_of(images, ids.size(0));  // names the shape expected
  const int64_t t = ids.size(1), n = image_tokens_count();
  if (t < 1 || t > config_.text_context)
    fail("VLM: {} text tokens per sequence, the context holds 1..{}", t, config_.text_context);
  if (!prefix_lengths.defined() || prefix_lengths.dim() != 1 || prefix_lengths.size(0) != ids.size(0))
    fail("VLM: prefix_lengths must be integer [{}], got {}", ids.size(0),
         prefix_lengths.defined() ? prefix_lengths.shape_string() : "undefined");
  const Tensor text = token_embedding->forward(ids);
  const Tensor tokens = reads_images() ? image_tokens(images) : Tensor();
  Tensor in_sequence;
  if (n > 0) {
    std::vector<int64_t> prompts = prefix_lengths.to_vector<int64_t>();
    for (int64_t& p : prompts) p -= n;
    in_sequence = sequence_image_tokens(tokens, text, prompts);
  }
  const Tensor memory = config_.fusion == VlmConfig::Fusion::cross_attention ? tokens : Tensor();
  Tensor x = (n > 0 ? concat({in_sequence, text}, 1) : text) + positional_embedding.slice(0, 0, n + t);
  for (size_t i = 0; i < blocks->items.size(); ++i) {
    x = blocks->items[i]->forward(x, Tensor(), prefix_lengths);
    if (const GatedCrossAttentionBlock* cross = cross_block_after(i)) x = cross->forward(x, memory);
  }
  return n > 0 ? x.slice(1, n, n + t) : x;
}

Tensor VisionLanguageModel::text_states(const Tensor& images, const Tensor& ids, const Tensor& prefix_lengths) {
  return ln_final->forward(hidden(images, ids, prefix_lengths));
}

Tensor VisionLanguageModel::logits(const Tensor& images, const Tensor& ids, const Tensor& prefix_lengths) {
  return lm_head->forward(text_states(images, ids, prefix_lengths));
}

Tensor VisionLanguageModel::loss(const Tensor& images, const Tensor& ids, const Tensor& prefix_lengths,
                                 const Tensor& targets) {
  if (!targets.defined() || targets.shape() != ids.shape() || is_floating(targets.dtype()))
    fail("VLM: targets must be integer {} like the ids, got {}", ids.shape_string(),
         targets.defined() ? targets.shape_string() : "undefined");
  std::vector<int64_t> rows, labels;
  const std::vector<int64_t> all = targets.to_vector<int64_t>();
  for (size_t i = 0; i < all.size(); ++i)
    if (all[i] >= 0) {
      if (all[i] >= config_.vocab_size()) fail("VLM: target {} outside the vocabulary [0, {})", all[i], config_.vocab_size());
      rows.push_back(int64_t(i)), labels.push_back(all[i]);
    }
  if (rows.empty()) fail("VLM: the batch has no scored target (every suffix is empty)");
  const int64_t b = ids.size(0), t = ids.size(1), scored = int64_t(rows.size());
  const Tensor h = hidden(images, ids, prefix_lengths).reshape({b * t, config_.width});
  const Tensor picked = index_select(h, 0, Tensor::from_vector(rows, {scored}));
  const Tensor logits = lm_head->forward(ln_final->forward(picked));
  if (!config_.loss_per_sequence) return cross_entropy(logits, Tensor::from_vector(labels, {scored}));
  // Each scored token weighs 1 / (its sequence's scored tokens x the sequences with any).
  std::vector<int64_t> per_sequence(static_cast<size_t>(b), 0);
  for (int64_t r : rows) ++per_sequence[size_t(r / t)];
  const auto sequences = double(std::count_if(per_sequence.begin(), per_sequence.end(), [](int64_t n) { return n > 0; }));
  std::vector<float> weights;
  for (int64_t r : rows) weights.push_back(float(1.0 / (double(per_sequence[size_t(r / t)]) * sequences)));
  const Tensor log_p = gather(log_softmax(logits, 1), 1, Tensor::from_vector(labels, {scored, 1})).reshape({scored});
  return neg(sum(mul(log_p, Tensor::from_vector(weights, {scored}))));
}

}  // namespace tessera::nn
