#pragma once
// CLIP / SigLIP dual encoder: an image tower (ViT trunk, CLS or average pooling, linear
// projection) and a text tower (nn/text_transformer.h) mapping into one embedding space, plus
// the loss's learnable scalars. Parameter names follow open_clip where it has one:
//   visual.* (timm ViT names, no head), visual_projection.weight, text.*, logit_scale, logit_bias.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "autograd/ops/contrastive.h"
#include "autograd/random.h"
#include "nn/capabilities.h"
#include "nn/linear.h"
#include "nn/text_transformer.h"
#include "nn/vit.h"

namespace tessera::nn {

struct DualEncoderConfig {
  enum class Loss { info_nce, sigmoid };  // CLIP, SigLIP

  ViTConfig image;             // num_classes is ignored (the trunk has no head)
  TextTransformerConfig text;  // embed_dim is ignored (set from embed_dim below)
  int64_t embed_dim = 128;
  Loss loss = Loss::info_nce;
  // Initial log of the logit scale: CLIP log(1/0.07); SigLIP's t' log(10). NaN = that default.
  double init_logit_scale = NAN;
  double init_logit_bias = -10;  // SigLIP only
  double max_logit_scale = kClipMaxLogitScale;  // InfoNCE's clamp
  bool multi_positive = false;  // same-class pairs count as positives when labels are given
  // A dense auxiliary objective on the image tower's patch tokens: a linear head predicts, for
  // every patch, which of `patch_classes` object classes covers it, or background (one more
  // class). 0 = no head. The task adds patch_loss_weight x its cross-entropy to the pair loss.
  int64_t patch_classes = 0;
  double patch_loss_weight = 1;
  // With the patch head, a second linear head on the same tokens predicts, for every patch, the
  // class of the object whose box centre it holds, or background (nn/patch_targets.h): counting
  // and boxes read off such tokens. The task adds patch_centre_weight x its cross-entropy; 0 = none.
  double patch_centre_weight = 0;

  double logit_scale_init() const {
    return std::isnan(init_logit_scale) ? (loss == Loss::info_nce ? std::log(1 / 0.07) : std::log(10.0)) : init_logit_scale;
  }
  void validate() const;
};

class DualEncoder : public Module, public ImageToEmbedding, public ImageToAttention {
 public:
  DualEncoder(const DualEncoderConfig& config, Generator& gen);

  // images f32 [B, C, H, W] -> [B, embed_dim], not normalised.
  Tensor encode_image(const Tensor& images);
  // The same embedding and, with a patch head, its per-patch class logits [B, N, patch_classes + 1]
  // from the same forward pass (undefined without the head), and the centre head's likewise.
  struct ImageEncoding {
    Tensor embedding;
    Tensor patch_logits;
    Tensor centre_logits;
  };
  ImageEncoding encode_image_and_patches(const Tensor& images);
  // Mean cross-entropy of patch logits [B, N, C + 1] against targets integer [B, N].
  static Tensor patch_class_loss(const Tensor& patch_logits, const Tensor& targets);
  // ids integer [B, T], eos_index integer [B] -> [B, embed_dim], not normalised.
  Tensor encode_text(const Tensor& ids, const Tensor& eos_index);
  // The configured loss over a batch of pairs; labels (integer [B]) are used with multi_positive.
  Tensor loss(const Tensor& image_embeddings, const Tensor& text_embeddings, const Tensor& labels = Tensor());
  // ImageToEmbedding: the image tower's joint-space embedding, L2-normalised (as the model
  // compares embeddings), [B, embed_dim].
  int64_t image_embedding_dim() const override { return config_.embed_dim; }
  std::string image_embedding_description() const override;
  Tensor embed_images(const Tensor& images) override;
  ImageAttention image_attention(const Tensor& images) override { return visual->attention(images); }
  // After each optimizer step: InfoNCE keeps log scale in [0, log(max_logit_scale)] as CLIP.
  void after_step();

  const DualEncoderConfig& config() const { return config_; }

  std::shared_ptr<VisionTransformer> visual;
  std::shared_ptr<Linear> visual_projection;
  std::shared_ptr<TextTransformer> text;
  std::shared_ptr<Linear> patch_head;         // null when patch_classes == 0
  std::shared_ptr<Linear> patch_centre_head;  // null when patch_centre_weight == 0
  Tensor logit_scale;  // [1]
  Tensor logit_bias;   // [1], SigLIP only

 private:
  DualEncoderConfig config_;
};

}  // namespace tessera::nn
