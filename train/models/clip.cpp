// model.type: clip and siglip — dual encoders (nn/dual_encoder.h) trained on image-caption
// pairs: an image tower (ViT trunk + projection) and a text tower (byte-level text transformer +
// projection). clip trains with InfoNCE, siglip with the pairwise sigmoid loss; their loss
// settings are model keys because the logit scale and bias are parameters of the model.
#include "train/models/clip.h"

#include <cmath>

#include "nn/contrastive_metrics.h"
#include "train/models/model_registry.h"
#include "train/models/vit_stem.h"

namespace tessera::train {
namespace {

std::vector<Field> tower_fields(bool text) {
  std::vector<Field> f{
      integer("width", text ? 128 : 192, "token width", 1),
      integer("depth", text ? 4 : 6, "transformer blocks", 0),
      integer("heads", text ? 4 : 3, "attention heads; must divide width", 1),
      number("mlp_ratio", 4, "MLP hidden width / token width", 0),
  };
  if (text) {
    f.push_back(integer("context", 48, "tokens per caption (BOS + UTF-8 bytes + EOS); longer captions are cut", 2));
    f.push_back(string("pooling", "eos", "eos: causal attention, read at the end-of-text token (CLIP); "
                                          "mean: bidirectional, mean of the non-pad tokens", {"eos", "mean"}));
  } else {
    f.push_back(integer("patch_size", 4, "side of the square patches; must divide the image size", 1));
    f.push_back(string("pooling", "cls", "the image embedding: CLS token or mean of the patch tokens", {"cls", "avg"}));
    f.push_back(string("pos_embed", "learned", "position embedding", {"learned", "sincos"}));
    f.push_back(patch_stem_field());
  }
  return f;
}

std::vector<Field> dual_encoder_fields(bool siglip) {
  std::vector<Field> f{
      section("image", "the image tower: a ViT trunk without head", tower_fields(false)),
      section("text", "the text tower: a byte-level text transformer", tower_fields(true)),
      integer("embed_dim", 128, "width of the joint embedding space (both projections)", 1),
      number("init_logit_scale", siglip ? std::log(10.0) : std::log(1 / 0.07),
             siglip ? "initial t' (the logit scale is exp(t'); SigLIP: log 10)"
                    : "initial log of the logit scale (CLIP: log(1/0.07)); exp of it is clamped at max_logit_scale"),
      boolean("multi_positive", false, "pairs of the same class count as positives (needs labels)"),
      string_list("zero_shot_templates", "[\"a photo of a {}.\"]",
                  "prompts whose text embeddings, averaged per class, classify images zero-shot"),
      section("patch_head",
              "a dense auxiliary objective for the image tower on scene data sets: a linear head on every patch "
              "token predicts the class of the object whose box holds the patch's centre, or background",
              {integer("classes", 0, "object classes of the scene data set (10 for Fashion-MNIST scenes); 0: no head"),
               number("weight", 1, "weight of the head's mean cross-entropy added to the pair loss in training (the eval "
                                    "metric loss stays the pair loss alone, comparable with runs without the head)", 0),
               number("centre_weight", 0,
                      "weight of a second head's cross-entropy: on every patch token, the class of the object whose "
                      "box centre the patch holds, or background (each object labels one patch, so counts and boxes "
                      "read off the tokens); 0: no centre head", 0)}),
  };
  if (siglip)
    f.push_back(number("init_logit_bias", -10, "initial bias b of the sigmoid logits (SigLIP: -10)"));
  else
    f.push_back(number("max_logit_scale", 100, "clamp of exp(logit_scale), as CLIP", 1));
  return f;
}

std::shared_ptr<nn::Module> build(const Section& s, const DataShape& data, Generator& gen, bool siglip) {
  const char* type = siglip ? "siglip" : "clip";
  if (data.height != data.width)
    fail("model.type {} needs square images, but the data set's are {}x{}", type, data.height, data.width);
  nn::DualEncoderConfig c;
  c.loss = siglip ? nn::DualEncoderConfig::Loss::sigmoid : nn::DualEncoderConfig::Loss::info_nce;
  const Section im = s.section("image"), tx = s.section("text");
  c.image.image_size = data.height;
  c.image.channels = data.channels;
  c.image.patch_size = im.integer("patch_size");
  c.image.width = im.integer("width");
  c.image.depth = im.integer("depth");
  c.image.heads = im.integer("heads");
  c.image.mlp_ratio = im.number("mlp_ratio");
  c.image.pooling = im.string("pooling") == "cls" ? nn::ViTConfig::Pooling::cls : nn::ViTConfig::Pooling::avg;
  c.image.pos_embed = im.string("pos_embed") == "learned" ? nn::ViTConfig::PosEmbed::learned : nn::ViTConfig::PosEmbed::sincos;
  c.image.stem = patch_stem(im, "model.image.");
  c.image.num_classes = 0;
  if (c.image.image_size % c.image.patch_size != 0)
    fail("model.image.patch_size {} does not divide the data set's image size {}", c.image.patch_size, c.image.image_size);
  c.text.context = tx.integer("context");
  c.text.width = tx.integer("width");
  c.text.depth = tx.integer("depth");
  c.text.heads = tx.integer("heads");
  c.text.mlp_ratio = tx.number("mlp_ratio");
  c.text.pooling = tx.string("pooling") == "eos" ? nn::TextTransformerConfig::Pooling::eos : nn::TextTransformerConfig::Pooling::mean;
  c.embed_dim = s.integer("embed_dim");
  c.init_logit_scale = s.number("init_logit_scale");
  if (siglip) c.init_logit_bias = s.number("init_logit_bias");
  else c.max_logit_scale = s.number("max_logit_scale");
  c.multi_positive = s.boolean("multi_positive");
  const Section patch = s.section("patch_head");
  c.patch_classes = patch.integer("classes");
  c.patch_loss_weight = patch.number("weight");
  c.patch_centre_weight = patch.number("centre_weight");
  if (c.patch_centre_weight > 0 && c.patch_classes == 0)
    fail("model.patch_head.centre_weight {} needs model.patch_head.classes (the centre head predicts those classes)",
         c.patch_centre_weight);
  if (c.patch_classes > 0 && !data.object_class_names.empty() &&
      c.patch_classes != int64_t(data.object_class_names.size()))
    fail("model.patch_head.classes is {}, but the data set's objects are of {} classes", c.patch_classes,
         data.object_class_names.size());
  if (c.multi_positive && data.num_classes == 0)
    fail("model.multi_positive needs a labelled data set, but this one has no labels");
  std::vector<std::string> templates = s.strings("zero_shot_templates");
  for (const auto& t : templates)
    if (t.find("{}") == std::string::npos) fail("model.zero_shot_templates: '{}' has no {{}} for the class name", t);
  return std::make_shared<ClipModel>(c, data.class_names, std::move(templates), gen);
}

const Registration<ModelFactory> clip{
    models(),
    {"clip", "CLIP dual encoder (ViT + text transformer), InfoNCE", "contrastive", dual_encoder_fields(false),
     [](const Section& s, const DataShape& d, Generator& g) { return build(s, d, g, false); }}};

const Registration<ModelFactory> siglip{
    models(),
    {"siglip", "SigLIP dual encoder (ViT + text transformer), pairwise sigmoid loss", "contrastive",
     dual_encoder_fields(true), [](const Section& s, const DataShape& d, Generator& g) { return build(s, d, g, true); }}};

}  // namespace

ClipModel::ClipModel(const nn::DualEncoderConfig& config, std::vector<std::string> class_names,
                     std::vector<std::string> templates, Generator& gen)
    : nn::DualEncoder(config, gen),
      class_names(std::move(class_names)),
      tokenizer(config.text.context),
      templates_(std::move(templates)) {}

Tensor ClipModel::embed_texts(const std::vector<std::string>& texts) {
  const data::TokenizedBatch b = tokenizer.encode_batch(texts);
  return encode_text(b.ids, b.eos_index);
}

Tensor ClipModel::class_embeddings(const std::vector<std::string>& names) {
  return nn::zero_shot_class_embeddings(*this, names, templates_);
}

}  // namespace tessera::train
