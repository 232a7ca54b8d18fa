#include "nn/vit.h"

#include <cmath>

#include "autograd/ops/dropout.h"
#include "autograd/error.h"
#include "autograd/ops.h"
#include "nn/conv_stem.h"
#include "nn/init.h"

namespace tessera::nn {

void ViTConfig::validate() const {
  if (image_size <= 0 || patch_size <= 0 || channels <= 0)
    fail("vit: image_size ({}), patch_size ({}) and channels ({}) must be positive", image_size, patch_size, channels);
  if (image_size % patch_size != 0)
    fail("vit: image_size {} is not a multiple of patch_size {}", image_size, patch_size);
  if (width <= 0 || depth < 0 || heads <= 0) fail("vit: width ({}) and heads ({}) must be positive", width, heads);
  if (width % heads != 0) fail("vit: width {} does not split into {} heads", width, heads);
  if (!(mlp_ratio > 0)) fail("vit: mlp_ratio must be positive, got {}", mlp_ratio);
  if (num_classes < 0) fail("vit: num_classes must be >= 0, got {}", num_classes);
  if (!(dropout >= 0 && dropout < 1)) fail("vit: dropout must be in [0, 1), got {}", dropout);
  if (!(drop_path >= 0 && drop_path < 1)) fail("vit: drop_path must be in [0, 1), got {}", drop_path);
  if (stem == Stem::conv && (patch_size < 2 || (patch_size & (patch_size - 1)) != 0))
    fail("vit: a conv stem halves the image per convolution, so patch_size must be a power of two >= 2, got {}",
         patch_size);
  if (pos_embed == PosEmbed::sincos && width % 4 != 0)
    fail("vit: sin-cos position embeddings need a width that is a multiple of 4, got {}", width);
}

Tensor sincos_position_embedding_2d(int64_t grid, int64_t dim) {
  if (grid <= 0 || dim <= 0 || dim % 4 != 0)
    fail("sincos_position_embedding_2d: needs grid > 0 and dim a multiple of 4 (grid {}, dim {})", grid, dim);
  const int64_t quarter = dim / 4;
  std::vector<float> table(size_t(grid * grid * dim));
  for (int64_t r = 0; r < grid; ++r)
    for (int64_t c = 0; c < grid; ++c) {
      float* row = table.data() + (r * grid + c) * dim;
      for (int64_t k = 0; k < quarter; ++k) {
        const double omega = std::pow(10000.0, -double(k) / double(quarter));
        row[k] = float(std::sin(double(c) * omega));
        row[quarter + k] = float(std::cos(double(c) * omega));
        row[2 * quarter + k] = float(std::sin(double(r) * omega));
        row[3 * quarter + k] = float(std::cos(double(r) * omega));
      }
    }
  return Tensor::from_vector(table, {grid * grid, dim});
}

namespace {
// timm's _init_weights: every Linear gets trunc_normal(0.02) weights and zero biases.
void init_linears(Module& m, Generator& gen) {
  if (auto* linear = dynamic_cast<Linear*>(&m)) {
    init::trunc_normal_(linear->weight, 0.02, gen);
    if (linear->bias.defined()) init::zeros_(linear->bias);
  }
  for (auto& [name, child] : m.named_children()) init_linears(*child, gen);
}
}  // namespace

VisionTransformer::VisionTransformer(const ViTConfig& config, Generator& gen) : config_(config) {
  config.validate();
  const bool cls = config.pooling == ViTConfig::Pooling::cls;
  const int64_t W = config.width;
  if (config.stem == ViTConfig::Stem::conv)
    patch_embed = register_module(
        "patch_embed", std::make_shared<ConvPatchStem>(config.image_size, config.patch_size, config.channels, W, gen));
  else
    patch_embed = register_module(
        "patch_embed", std::make_shared<PatchEmbed>(config.image_size, config.patch_size, config.channels, W, gen));
  const int64_t tokens = patch_embed->num_patches() + (cls ? 1 : 0);
  if (cls) {
    // As timm: nearly zero, so the CLS token starts as a pure query that learns what to carry.
    Tensor t = Tensor::empty({1, 1, W});
    init::normal_(t, 0.0, 1e-6, gen);
    cls_token = register_parameter("cls_token", t);
  }
  if (config.pos_embed == ViTConfig::PosEmbed::learned) {
    Tensor t = Tensor::empty({1, tokens, W});
    init::trunc_normal_(t, 0.02, gen);
    pos_embed = register_parameter("pos_embed", t);
  } else {
    Tensor table = sincos_position_embedding_2d(patch_embed->grid, W).reshape({1, tokens - (cls ? 1 : 0), W});
    if (cls) table = concat({Tensor::zeros({1, 1, W}), table}, 1);  // the CLS token has no position
    pos_embed = register_buffer("pos_embed", table);
  }
  Block::Options bo;
  bo.mlp_ratio = config.mlp_ratio;
  bo.qkv_bias = config.qkv_bias;
  bo.drop = config.dropout;
  bo.norm_eps = config.norm_eps;
  blocks = register_module("blocks", std::make_shared<BlockList>());
  for (int64_t i = 0; i < config.depth; ++i) {
    bo.drop_path = config.depth > 1 ? config.drop_path * double(i) / double(config.depth - 1) : 0.0;
    blocks->append(std::make_shared<Block>(W, config.heads, bo, gen));
  }
  norm = register_module("norm", std::make_shared<LayerNorm>(W, config.norm_eps));
  if (config.num_classes > 0) head = register_module("head", std::make_shared<Linear>(W, config.num_classes, true, gen));
  init_linears(*this, gen);
}

ViTOutput VisionTransformer::forward(const Tensor& images) {
  const bool cls = cls_token.defined();
  Tensor x = patch_embed->forward(images);
  const int64_t B = x.size(0), N = x.size(1), W = config_.width;
  if (cls) x = concat({cls_token.expand({B, 1, W}), x}, 1);
  x = dropout(x + pos_embed, config_.dropout, is_training());
  for (auto& block : blocks->items) x = block->forward(x);
  x = norm->forward(x);
  ViTOutput out;
  out.tokens = cls ? x.slice(1, 1, N + 1) : x;
  out.pooled = cls ? x.select(1, 0) : mean(x, {1});
  if (head) out.logits = head->forward(out.pooled);
  return out;
}

ImageAttention VisionTransformer::attention(const Tensor& images) {
  const bool cls = cls_token.defined();
  Tensor x = patch_embed->forward(images);
  const int64_t B = x.size(0), W = config_.width;
  if (cls) x = concat({cls_token.expand({B, 1, W}), x}, 1);
  x = x + pos_embed;
  const int64_t T = x.size(1), H = config_.heads, d = W / H;
  ImageAttention out;
  out.cls_first = cls;
  out.grid_height = out.grid_width = config_.image_size / config_.patch_size;
  for (auto& block : blocks->items) {
    // As MultiHeadSelfAttention computes them: q | k | v side by side, heads side by side in each.
    const Tensor qkv = block->attn->qkv->forward(block->norm1->forward(x));
    const Tensor q = qkv.slice(2, 0, W).reshape({B, T, H, d}).permute({0, 2, 1, 3});
    const Tensor k = qkv.slice(2, W, 2 * W).reshape({B, T, H, d}).permute({0, 2, 3, 1});
    const Tensor weights = softmax(matmul(q.contiguous(), k.contiguous()) * (1.0 / std::sqrt(double(d))), -1);
    out.layers.push_back(mean(weights, {1}));  // [B, T, T]
    x = block->forward(x);
  }
  return out;
}

ViTClassifier::ViTClassifier(const ViTConfig& config, Generator& gen)
    : vit_(std::make_shared<VisionTransformer>(config, gen)) {
  // The ViT's own tensors and children, re-registered here in the same order and names.
  for (auto& [name, t] : vit_->named_parameters())
    if (name.find('.') == std::string::npos) register_parameter(name, t);
  for (auto& [name, t] : vit_->named_buffers())
    if (name.find('.') == std::string::npos) register_buffer(name, t);
  for (auto& [name, child] : vit_->named_children()) register_module(name, child);
}

Tensor ViTClassifier::forward(const Tensor& images) {
  ViTOutput out = vit_->forward(images);
  return out.logits.defined() ? out.logits : out.pooled;
}

PatchTokens ViTClassifier::patch_tokens(const Tensor& images) {
  const ViTOutput out = vit_->forward(images);
  return {out.tokens, out.pooled};
}

std::string ViTClassifier::image_embedding_description() const {
  return vit_->config().pooling == ViTConfig::Pooling::cls ? "vit pooled embedding (the CLS token after the final norm)"
                                                          : "vit pooled embedding (the mean of the patch tokens after the final norm)";
}

}  // namespace tessera::nn
