// model.type: vit — a Vision Transformer (nn/vit.h) from images to class logits, or, with
// num_classes 0, to its pooled embedding (the tokens come from `tessera tokenize`).
#include "nn/vit.h"
#include "train/models/model_registry.h"
#include "train/models/vit_stem.h"

namespace tessera::train {
namespace {

std::shared_ptr<nn::Module> build_vit(const Section& s, const DataShape& data, Generator& gen) {
  if (data.height != data.width)
    fail("model.type vit needs square images, but the data set's are {}x{}", data.height, data.width);
  nn::ViTConfig c;
  c.image_size = data.height;
  c.channels = data.channels;
  c.patch_size = s.integer("patch_size");
  c.width = s.integer("width");
  c.depth = s.integer("depth");
  c.heads = s.integer("heads");
  c.mlp_ratio = s.number("mlp_ratio");
  c.pooling = s.string("pooling") == "cls" ? nn::ViTConfig::Pooling::cls : nn::ViTConfig::Pooling::avg;
  c.pos_embed = s.string("pos_embed") == "learned" ? nn::ViTConfig::PosEmbed::learned : nn::ViTConfig::PosEmbed::sincos;
  c.stem = patch_stem(s, "model.");
  c.num_classes = s.integer("num_classes") >= 0 ? s.integer("num_classes") : data.num_classes;
  c.dropout = s.number("dropout");
  c.drop_path = s.number("drop_path");
  c.qkv_bias = s.boolean("qkv_bias");
  if (c.image_size % c.patch_size != 0)
    fail("model.patch_size {} does not divide the data set's image size {}", c.patch_size, c.image_size);
  if (c.width % c.heads != 0) fail("model.width {} does not split into model.heads {}", c.width, c.heads);
  return std::make_shared<nn::ViTClassifier>(c, gen);
}

const Registration<ModelFactory> vit{
    models(),
    {"vit", "Vision Transformer (timm's layout and initialisation)", "classification",
     {integer("patch_size", 4, "side of the square patches; must divide the image size", 1),
      patch_stem_field(),
      integer("width", 192, "token width", 1),
      integer("depth", 6, "transformer blocks", 0),
      integer("heads", 3, "attention heads; must divide width", 1),
      number("mlp_ratio", 4, "MLP hidden width / token width", 0),
      string("pooling", "cls", "the image embedding: a CLS token or the mean of the patch tokens", {"cls", "avg"}),
      string("pos_embed", "learned", "position embedding", {"learned", "sincos"}),
      integer("num_classes", -1, "classes of the head (-1 = the data set's, 0 = no head)", -1),
      number("dropout", 0, "dropout after the position embedding, attention projections and MLPs", 0, 0.99),
      number("drop_path", 0, "stochastic depth of the last block (rising linearly from 0)", 0, 0.99),
      boolean("qkv_bias", true, "bias in the fused q/k/v projection")},
     build_vit}};

}  // namespace
}  // namespace tessera::train
