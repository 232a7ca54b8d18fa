#include "nn/text_transformer.h"

#include <cmath>

#include "autograd/error.h"
#include "autograd/ops.h"
#include "nn/init.h"

namespace tessera::nn {

void TextTransformerConfig::validate() const {
  if (vocab_size < 1) fail("text transformer: vocab_size must be positive, got {}", vocab_size);
  if (pad_id < 0 || pad_id >= vocab_size) fail("text transformer: pad_id {} outside the vocabulary [0, {})", pad_id, vocab_size);
  if (context < 1) fail("text transformer: context must be positive, got {}", context);
  if (width < 1 || depth < 0) fail("text transformer: width {} / depth {} invalid", width, depth);
  if (heads < 1 || width % heads != 0) fail("text transformer: width {} does not split into {} heads", width, heads);
  if (!(mlp_ratio > 0)) fail("text transformer: mlp_ratio must be positive, got {}", mlp_ratio);
  if (embed_dim < 0) fail("text transformer: embed_dim must be >= 0, got {}", embed_dim);
}

void init_clip_blocks(const BlockList& blocks, int64_t width, Generator& gen) {
  const double attn_std = std::pow(double(width), -0.5);
  const double proj_std = attn_std * std::pow(2.0 * double(std::max<size_t>(blocks.items.size(), 1)), -0.5);
  const double fc_std = std::pow(2.0 * double(width), -0.5);
  for (const auto& b : blocks.items) {
    init::normal_(b->attn->qkv->weight, 0, attn_std, gen);
    init::normal_(b->attn->proj->weight, 0, proj_std, gen);
    init::normal_(b->mlp->fc1->weight, 0, fc_std, gen);
    init::normal_(b->mlp->fc2->weight, 0, proj_std, gen);
    for (Tensor* bias : {&b->attn->qkv->bias, &b->attn->proj->bias, &b->mlp->fc1->bias, &b->mlp->fc2->bias})
      if (bias->defined()) init::zeros_(*bias);
  }
}

TextTransformer::TextTransformer(const TextTransformerConfig& c, Generator& gen) : config_(c) {
  c.validate();
  token_embedding = register_module("token_embedding", std::make_shared<Embedding>(c.vocab_size, c.width, gen));
  positional_embedding = register_parameter("positional_embedding", Tensor::zeros({c.context, c.width}));
  blocks = register_module("blocks", std::make_shared<BlockList>());
  Block::Options bo;
  bo.mlp_ratio = c.mlp_ratio;
  bo.causal = c.pooling == TextTransformerConfig::Pooling::eos;
  bo.norm_eps = c.norm_eps;
  for (int64_t i = 0; i < c.depth; ++i) blocks->append(std::make_shared<Block>(c.width, c.heads, bo, gen));
  ln_final = register_module("ln_final", std::make_shared<LayerNorm>(c.width, c.norm_eps));
  if (c.embed_dim > 0)
    text_projection = register_module("text_projection", std::make_shared<Linear>(c.width, c.embed_dim, false, gen));

  // CLIP's initialisation: small embeddings; attention and MLP weights scaled by width, the
  // residual output projections further by depth so that the residual stream does not grow.
  init::normal_(token_embedding->weight, 0, 0.02, gen);
  init::normal_(positional_embedding, 0, 0.01, gen);
  init_clip_blocks(*blocks, c.width, gen);
  const double attn_std = std::pow(double(c.width), -0.5);
  if (text_projection) init::normal_(text_projection->weight, 0, attn_std, gen);
}

Tensor TextTransformer::forward(const Tensor& ids, const Tensor& eos_index) {
  const TextTransformerConfig& c = config_;
  if (!ids.defined() || ids.dim() != 2 || is_floating(ids.dtype()))
    fail("text transformer: token ids must be integer [B, T], got {}", ids.defined() ? ids.shape_string() : "undefined");
  const int64_t batch = ids.size(0), t = ids.size(1);
  if (t < 1 || t > c.context) fail("text transformer: {} tokens per text, the context holds 1..{}", t, c.context);
  Tensor x = token_embedding->forward(ids) + positional_embedding.slice(0, 0, t);
  const bool eos = c.pooling == TextTransformerConfig::Pooling::eos;
  Tensor padding;  // u8 [B, T], 1 at pad tokens (mean pooling only: the causal mask already hides them)
  if (!eos) padding = equal(ids.to(DType::i64), Tensor::full({1}, double(c.pad_id), DType::i64));
  for (const auto& block : blocks->items) x = block->forward(x, padding);
  x = ln_final->forward(x);

  Tensor pooled;
  if (eos) {
    if (!eos_index.defined() || eos_index.dim() != 1 || eos_index.size(0) != batch || is_floating(eos_index.dtype()))
      fail("text transformer: eos pooling needs integer eos_index [{}], got {}", batch,
           eos_index.defined() ? eos_index.shape_string() : "undefined");
    std::vector<int64_t> rows = eos_index.to_vector<int64_t>();
    for (int64_t b = 0; b < batch; ++b) {
      if (rows[size_t(b)] < 0 || rows[size_t(b)] >= t)
        fail("text transformer: eos_index {} of text {} outside [0, {})", rows[size_t(b)], b, t);
      rows[size_t(b)] += b * t;
    }
    pooled = index_select(x.reshape({batch * t, c.width}), 0, Tensor::from_vector(rows, {batch}));
  } else {
    const Tensor keep = rsub(1.0, padding.to(x.dtype())).unsqueeze(-1);  // [B, T, 1]
    const Tensor count = maximum(sum(keep, {1}), Tensor::ones({1}, x.dtype()));
    pooled = sum(x * keep, {1}) / count;
  }
  return text_projection ? text_projection->forward(pooled) : pooled;
}

}  // namespace tessera::nn
