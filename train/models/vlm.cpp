// model.type: vlm — a PaLI-3 / PaliGemma-style vision-language model (nn/vlm.h) trained on scene
// data sets by the vlm task (train/tasks/vlm.cpp). Stage 2 of two: model.image_encoder.from names
// a SigLIP run's checkpoint whose image tower (visual.*) becomes this model's. model.fusion picks
// how the LM reads the image (prefix tokens, LLaMA 3.2's gated cross-attention, LLaMA-VID's two
// tokens per image, or not at all: the text-only LM that model.lm.from can start a cross-attention
// model from, its LM frozen).
#include "train/models/vlm.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "autograd/engine.h"
#include "autograd/ops.h"
#include "data/scene_text.h"
#include "nn/vlm_decoder.h"
#include "train/checkpoint.h"
#include "train/trained_model.h"
#include "train/models/model_registry.h"
#include "train/models/vit_stem.h"

namespace tessera::train {
namespace {

std::vector<Field> vlm_fields() {
  return {
      string("fusion", "prefix",
             "how the LM reads the image: prefix (PaliGemma: the projected image tokens before the text), "
             "cross_attention (LLaMA 3.2 Vision: gated cross-attention layers, gates at 0), dual_token (LLaMA-VID: "
             "a prompt-guided context token and pooled content tokens per image), none (a text-only LM, blind to "
             "the image)",
             {"prefix", "cross_attention", "dual_token", "none"}),
      integer("cross_attention_every", 1, "fusion cross_attention: a gated cross-attention layer after every k-th LM "
                                          "block (at most lm.depth)", 1),
      integer("frames", 1, "images per sample: 1 for single scenes, F for clips of F frames (a data set made by "
                           "'tessera data import scenes --frames F'); each frame's tokens get a learned frame embedding",
              1, 64),
      integer("content_grid", 1, "fusion dual_token: content tokens per image side (1: one mean-pooled token, 2: "
                                 "four); must divide the image's token grid", 1),
      section("image", "the image tower: a ViT trunk as the stage-1 SigLIP run's model.image",
              {integer("patch_size", 8, "side of the square patches; must divide the image size", 1),
               integer("width", 192, "token width", 1), integer("depth", 6, "transformer blocks", 0),
               integer("heads", 3, "attention heads; must divide width", 1),
               number("mlp_ratio", 4, "MLP hidden width / token width", 0),
               string("pos_embed", "learned", "position embedding", {"learned", "sincos"}), patch_stem_field()}),
      section("image_encoder", "where the image tower's weights come from, and whether it trains",
              {string("from", "", "a SigLIP (or CLIP) checkpoint whose visual.* weights start the tower; empty: random"),
               boolean("freeze", true, "the tower runs without gradients (PaLI-3's first stage); false trains it too "
                                       "(PaliGemma; give it its own rate with optim.lr_scales: [visual.=0.1])")}),
      section("lm", "the decoder-only language model",
              {integer("width", 192, "token width", 1), integer("depth", 4, "transformer blocks", 0),
               integer("heads", 3, "attention heads; must divide width", 1),
               number("mlp_ratio", 4, "MLP hidden width / token width", 0),
               string("from", "", "a vlm checkpoint (a text-only one: fusion none) whose language model "
                                  "(token_embedding, positional_embedding, blocks, ln_final, lm_head) starts this one"),
               boolean("freeze", false, "the language model gets no gradient: only the image side and the "
                                        "cross-attention layers train (Meta's recipe for LLaMA 3.2 Vision)")}),
      integer("text_context", 160, "text tokens per sequence, BOS to EOS; longer targets are cut", 3),
      string("loss_average", "token", "the suffix loss's mean: over all target tokens of the batch, or per sequence "
                                      "then over sequences (short answers weigh as much as long captions)",
             {"token", "sequence"}),
      integer("loc_bins", 64, "location tokens <loc0000>.. per box coordinate (PaliGemma: 1024)", 1, 10000),
      section("tasks", "relative frequency of each training task (prefix -> suffix)",
              {number("caption", 1, "'caption' -> one of the scene's captions", 0),
               number("detect", 2, "'detect bag ; coat' -> '<loc..>x4 bag ; ...'", 0),
               number("answer", 2, "'answer QUESTION' -> its answer", 0),
               number("count", 1, "'count bag' -> the number of bags", 0)}),
      section("generation", "decoding in evaluation (tessera generate can override)",
              {integer("beam", 1, "beam width; 1 = greedy", 1),
               integer("max_new_tokens", 0, "cap on generated tokens; 0 = up to text_context"),
               number("length_penalty", 1, "beams are ranked by log p / length^penalty")}),
  };
}

// The stage-1 checkpoint's visual.* weights, checked against the tower built here.
void load_image_encoder(VlmModel& model, const std::string& path) {
  const Checkpoint c = load_checkpoint(path);
  const Recipe stage1 = Recipe::parse(c.meta.recipe, path + " (stored recipe)");
  const std::map<std::string, Tensor> source = evaluation_weights(c, stage1, path);
  std::map<std::string, Tensor> tower;
  for (const auto& [name, t] : model.visual->state()) {
    const auto it = source.find("visual." + name);
    if (it == source.end())
      fail("model.image_encoder.from: {} (a '{}' model) has no parameter visual.{}; it needs a SigLIP or CLIP "
           "checkpoint whose image tower matches model.image", path, stage1.section("model").string("type"), name);
    if (it->second.shape() != t.shape())
      fail("model.image_encoder.from: {} has visual.{} of shape {}, but model.image makes {}; set model.image as the "
           "stage-1 recipe's model.image", path, name, it->second.shape_string(), t.shape_string());
    tower[name] = it->second;
  }
  model.visual->load_state(tower);
}

// The parameters of the language model proper: what a text-only LM and a VLM of any fusion share.
bool language_model_parameter(const std::string& name) {
  for (const char* part : {"token_embedding.", "positional_embedding", "blocks.", "ln_final.", "lm_head."})
    if (name.rfind(part, 0) == 0) return true;
  return false;
}

// model.lm.from: another vlm checkpoint's language model, checked against the one built here.
void load_language_model(VlmModel& model, const std::string& path) {
  const Checkpoint c = load_checkpoint(path);
  const Recipe source_recipe = Recipe::parse(c.meta.recipe, path + " (stored recipe)");
  const std::string type = source_recipe.section("model").string("type");
  if (type != "vlm")
    fail("model.lm.from: {} holds a '{}' model; it needs a vlm checkpoint (a text-only one: model.fusion none)", path,
         type);
  const std::map<std::string, Tensor> source = evaluation_weights(c, source_recipe, path);
  std::map<std::string, Tensor> lm;
  for (const auto& [name, t] : model.named_parameters()) {
    if (!language_model_parameter(name)) continue;
    const auto it = source.find(name);
    if (it == source.end()) fail("model.lm.from: {} has no parameter {}", path, name);
    if (it->second.shape() != t.shape())
      fail("model.lm.from: {} has {} of shape {}, but model.lm makes {}; set model.lm and text_context as the source "
           "recipe's{}", path, name, it->second.shape_string(), t.shape_string(),
           name == "positional_embedding" ? " (a prefix model's positions include its image tokens)" : "");
    lm[name] = it->second;
  }
  model.load_state(lm, /*strict=*/false);
}

std::shared_ptr<nn::Module> build(const Section& s, const DataShape& data, Generator& gen) {
  if (data.object_class_names.empty())
    fail("model.type vlm trains on scene data sets (objects/classes with class_names, as 'tessera data import "
         "scenes' writes); data.train has no objects");
  if (data.height != data.width)
    fail("model.type vlm needs square images, but the data set's are {}x{}", data.height, data.width);
  nn::VlmConfig c;
  const Section im = s.section("image"), lm = s.section("lm"), enc = s.section("image_encoder");
  const std::string fusion = s.string("fusion");
  c.fusion = fusion == "prefix"            ? nn::VlmConfig::Fusion::prefix
             : fusion == "cross_attention" ? nn::VlmConfig::Fusion::cross_attention
             : fusion == "dual_token"      ? nn::VlmConfig::Fusion::dual_token
                                           : nn::VlmConfig::Fusion::none;
  c.cross_attention_every = s.integer("cross_attention_every");
  c.content_grid = s.integer("content_grid");
  c.frames = s.integer("frames");
  if (data.frames > 0 && data.frames != c.frames)
    fail("model.frames is {} but the data set has {} image{} per sample; set model.frames: {}", c.frames, data.frames,
         data.frames == 1 ? "" : "s", data.frames);
  c.image.image_size = data.height;
  c.image.channels = data.channels;
  c.image.patch_size = im.integer("patch_size");
  c.image.width = im.integer("width");
  c.image.depth = im.integer("depth");
  c.image.heads = im.integer("heads");
  c.image.mlp_ratio = im.number("mlp_ratio");
  c.image.pooling = nn::ViTConfig::Pooling::avg;  // no CLS token: all patch tokens go to the LM
  c.image.pos_embed = im.string("pos_embed") == "learned" ? nn::ViTConfig::PosEmbed::learned : nn::ViTConfig::PosEmbed::sincos;
  c.image.stem = patch_stem(im, "model.image.");
  c.image.num_classes = 0;
  if (c.image.image_size % c.image.patch_size != 0)
    fail("model.image.patch_size {} does not divide the data set's image size {}", c.image.patch_size, c.image.image_size);
  c.freeze_image = enc.boolean("freeze");
  c.width = lm.integer("width");
  c.depth = lm.integer("depth");
  c.heads = lm.integer("heads");
  c.mlp_ratio = lm.number("mlp_ratio");
  if (c.fusion == nn::VlmConfig::Fusion::cross_attention && c.cross_attention_every > c.depth)
    fail("model.cross_attention_every {} is more than model.lm.depth {}: no block would be followed by a "
         "cross-attention layer", c.cross_attention_every, c.depth);
  if (c.fusion == nn::VlmConfig::Fusion::dual_token && (c.image.image_size / c.image.patch_size) % c.content_grid != 0)
    fail("model.content_grid {} does not divide the image's {}x{} token grid (model.image.patch_size {})",
         c.content_grid, c.image.image_size / c.image.patch_size, c.image.image_size / c.image.patch_size,
         c.image.patch_size);
  if (c.fusion == nn::VlmConfig::Fusion::none && !enc.string("from").empty())
    fail("model.fusion none reads no image, but model.image_encoder.from is set ({})", enc.string("from"));
  c.text_context = s.integer("text_context");
  c.location_bins = s.integer("loc_bins");
  c.loss_per_sequence = s.string("loss_average") == "sequence";
  const Section t = s.section("tasks");
  const VlmTaskWeights tasks{t.number("caption"), t.number("detect"), t.number("answer"), t.number("count")};
  if (tasks.caption + tasks.detect + tasks.answer + tasks.count <= 0) fail("model.tasks: every weight is 0; nothing to train");
  const Section g = s.section("generation");
  nn::GenerationOptions generation;
  generation.beam = g.integer("beam");
  generation.max_new_tokens = g.integer("max_new_tokens");
  generation.length_penalty = g.number("length_penalty");
  auto model = std::make_shared<VlmModel>(c, data::Nouns(data.object_class_names).singular, tasks, generation, gen);
  if (!enc.string("from").empty() && !data.weights_follow) load_image_encoder(*model, enc.string("from"));
  else if (c.freeze_image && enc.string("from").empty() && model->reads_images())
    fmt::print(stderr, "warning: model.image_encoder.freeze is on but .from is empty: the image tower stays random\n");
  if (!lm.string("from").empty() && !data.weights_follow) load_language_model(*model, lm.string("from"));
  if (lm.boolean("freeze")) {
    if (lm.string("from").empty())
      fmt::print(stderr, "warning: model.lm.freeze is on but model.lm.from is empty: the language model stays random\n");
    if (c.fusion != nn::VlmConfig::Fusion::cross_attention)
      fail("model.lm.freeze needs model.fusion cross_attention: with {} nothing that reads the image would train "
           "but the projector", fusion);
    for (auto& [name, p] : model->named_parameters())
      if (language_model_parameter(name)) p.requires_grad_(false);
  }
  return model;
}

const Registration<ModelFactory> vlm{
    models(),
    {"vlm", "PaliGemma-style vision-language model: SigLIP image tower -> projector -> prefix-LM decoder", "vlm",
     vlm_fields(), build}};

}  // namespace

VlmModel::VlmModel(const nn::VlmConfig& config, std::vector<std::string> nouns, VlmTaskWeights tasks,
                   nn::GenerationOptions generation, Generator& gen)
    : nn::VisionLanguageModel(config, gen), nouns_(std::move(nouns)), tasks_(tasks), generation_(generation) {}

nn::LocationGrid VlmModel::location_grid() const {
  const auto side = double(config().image.image_size);
  return {config().location_bins, side, side};
}

std::vector<nn::GeneratedText> VlmModel::generate_text(const Tensor& images, const std::vector<nn::TextPrompt>& prompts,
                                                       const nn::GenerationOptions& options) {
  NoGradGuard no_grad;
  const Tensor tokens = reads_images() ? image_tokens(images) : Tensor();
  std::vector<nn::GeneratedText> out;
  // In chunks, to bound the key/value cache (rows x layers x positions x width): 512 rows of a
  // single scene's prefix sequence, fewer when the image takes more positions (clips).
  const auto positions = size_t(image_tokens_count() + config().text_context);
  const size_t kRowsPerChunk = std::clamp<size_t>(512 * 224 / positions, 16, 512);
  for (size_t start = 0; start < prompts.size(); start += kRowsPerChunk) {
    const size_t end = std::min(prompts.size(), start + kRowsPerChunk);
    std::vector<std::vector<int64_t>> ids;
    std::vector<int64_t> rows;
    for (size_t i = start; i < end; ++i) {
      if (prompts[i].image < 0 || prompts[i].image >= images.size(0))
        fail("VLM generation: prompt {} asks about image {} of {}", i, prompts[i].image, images.size(0));
      ids.push_back(vocabulary().sequence(prompts[i].text, "", false));
      rows.push_back(prompts[i].image);
    }
    const Tensor chunk =
        tokens.defined() ? index_select(tokens, 0, Tensor::from_vector(rows, {int64_t(rows.size())})) : Tensor();
    for (nn::Generation& g : nn::generate(*this, chunk, ids, options)) {
      std::string text = vocabulary().decode(g.ids);
      out.push_back({std::move(text), std::move(g)});
    }
  }
  return out;
}

}  // namespace tessera::train
