#include "nn/dual_encoder.h"

#include <fmt/format.h>

#include "autograd/ops/contrastive.h"
#include "autograd/error.h"
#include "autograd/ops.h"
#include "nn/init.h"

namespace tessera::nn {
namespace {
ViTConfig trunk(ViTConfig c) {
  c.num_classes = 0;
  return c;
}
TextTransformerConfig tower(TextTransformerConfig c, int64_t embed_dim) {
  c.embed_dim = embed_dim;
  return c;
}
}  // namespace

void DualEncoderConfig::validate() const {
  if (embed_dim < 1) fail("dual encoder: embed_dim must be positive, got {}", embed_dim);
  if (!(max_logit_scale > 0)) fail("dual encoder: max_logit_scale must be positive, got {}", max_logit_scale);
  if (!std::isfinite(logit_scale_init())) fail("dual encoder: init_logit_scale must be finite");
  if (!std::isfinite(init_logit_bias)) fail("dual encoder: init_logit_bias must be finite");
  if (patch_classes < 0) fail("dual encoder: patch_classes must be 0 (no patch head) or positive, got {}", patch_classes);
  if (!(patch_loss_weight >= 0)) fail("dual encoder: patch_loss_weight must be non-negative, got {}", patch_loss_weight);
  if (!(patch_centre_weight >= 0))
    fail("dual encoder: patch_centre_weight must be non-negative, got {}", patch_centre_weight);
  if (patch_centre_weight > 0 && patch_classes == 0)
    fail("dual encoder: the patch centre head (patch_centre_weight {}) needs the patch head's classes (patch_classes)",
         patch_centre_weight);
  trunk(image).validate();
  tower(text, embed_dim).validate();
}

DualEncoder::DualEncoder(const DualEncoderConfig& c, Generator& gen) : config_(c) {
  c.validate();
  visual = register_module("visual", std::make_shared<VisionTransformer>(trunk(c.image), gen));
  visual_projection = register_module("visual_projection", std::make_shared<Linear>(c.image.width, c.embed_dim, false, gen));
  init::normal_(visual_projection->weight, 0, std::pow(double(c.image.width), -0.5), gen);
  text = register_module("text", std::make_shared<TextTransformer>(tower(c.text, c.embed_dim), gen));
  if (c.patch_classes > 0)
    patch_head = register_module("patch_head", std::make_shared<Linear>(c.image.width, c.patch_classes + 1, true, gen));
  if (c.patch_centre_weight > 0)
    patch_centre_head =
        register_module("patch_centre_head", std::make_shared<Linear>(c.image.width, c.patch_classes + 1, true, gen));
  logit_scale = register_parameter("logit_scale", Tensor::full({1}, c.logit_scale_init()));
  if (c.loss == DualEncoderConfig::Loss::sigmoid)
    logit_bias = register_parameter("logit_bias", Tensor::full({1}, c.init_logit_bias));
}

Tensor DualEncoder::encode_image(const Tensor& images) { return visual_projection->forward(visual->forward(images).pooled); }

DualEncoder::ImageEncoding DualEncoder::encode_image_and_patches(const Tensor& images) {
  const ViTOutput out = visual->forward(images);
  return {visual_projection->forward(out.pooled), patch_head ? patch_head->forward(out.tokens) : Tensor(),
          patch_centre_head ? patch_centre_head->forward(out.tokens) : Tensor()};
}

Tensor DualEncoder::patch_class_loss(const Tensor& patch_logits, const Tensor& targets) {
  if (patch_logits.dim() != 3 || targets.dim() != 2 || targets.size(0) != patch_logits.size(0) ||
      targets.size(1) != patch_logits.size(1))
    fail("dual encoder: patch logits {} and targets {} should be [B, N, C] and [B, N]", patch_logits.shape_string(),
         targets.shape_string());
  const int64_t rows = patch_logits.size(0) * patch_logits.size(1);
  return cross_entropy(patch_logits.reshape({rows, patch_logits.size(2)}), targets.reshape({rows}));
}

std::string DualEncoder::image_embedding_description() const {
  return fmt::format("{} image embedding (joint space, L2-normalised)",
                     config_.loss == DualEncoderConfig::Loss::info_nce ? "clip" : "siglip");
}

Tensor DualEncoder::embed_images(const Tensor& images) { return l2_normalize_rows(encode_image(images)); }

Tensor DualEncoder::encode_text(const Tensor& ids, const Tensor& eos_index) { return text->forward(ids, eos_index); }

Tensor DualEncoder::loss(const Tensor& image_embeddings, const Tensor& text_embeddings, const Tensor& labels) {
  const Tensor positives = config_.multi_positive ? labels : Tensor();
  if (config_.multi_positive && !labels.defined())
    fail("dual encoder: multi_positive needs labels, but the batch has none");
  if (config_.loss == DualEncoderConfig::Loss::info_nce)
    return info_nce_loss(image_embeddings, text_embeddings, logit_scale, {positives, config_.max_logit_scale});
  return sigmoid_pairwise_loss(image_embeddings, text_embeddings, logit_scale, logit_bias, {positives});
}

void DualEncoder::after_step() {
  if (config_.loss == DualEncoderConfig::Loss::info_nce) clamp_log_scale_(logit_scale, config_.max_logit_scale);
}

}  // namespace tessera::nn
