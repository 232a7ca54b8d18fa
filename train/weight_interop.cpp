#include "train/weight_interop.h"

#include <algorithm>
#include <set>

#include "autograd/error.h"
#include "nn/dual_encoder.h"
#include "nn/vit.h"
#include "train/checkpoint.h"
#include "train/json.h"
#include "train/recipe.h"

namespace tessera::train {

namespace fs = std::filesystem;

WeightNames parse_weight_names(const std::string& option, const std::string& value) {
  if (value == "tessera") return WeightNames::tessera;
  if (value == "timm") return WeightNames::timm;
  if (value == "open_clip") return WeightNames::open_clip;
  fail("{} '{}': give tessera, timm or open_clip", option, value);
}

const char* weight_names_name(WeightNames names) {
  switch (names) {
    case WeightNames::tessera: return "tessera";
    case WeightNames::timm: return "timm";
    case WeightNames::open_clip: return "open_clip";
  }
  return "?";
}

fs::path buffers_path_for(const fs::path& weights) {
  fs::path p = weights;
  return p.replace_extension(".buffers.safetensors");
}

namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

void replace_first(std::string& s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  if (at != std::string::npos) s.replace(at, from.size(), to);
}

// open_clip's CLIP with a timm image tower (open_clip/model.py, open_clip/timm_model.py) names
// Tessera's dual-encoder tensors so; "" for a tensor it has no place for.
std::string open_clip_name(const std::string& n) {
  if (starts_with(n, "visual.")) return "visual.trunk." + n.substr(7);
  if (n == "visual_projection.weight") return "visual.head.proj.weight";
  if (n == "logit_scale" || n == "logit_bias") return n;
  if (!starts_with(n, "text.")) return "";
  std::string t = n.substr(5);
  if (t == "text_projection.weight") return "text_projection";
  if (starts_with(t, "blocks.")) {
    t = "transformer.resblocks." + t.substr(7);
    replace_first(t, ".norm1.", ".ln_1.");
    replace_first(t, ".norm2.", ".ln_2.");
    replace_first(t, ".attn.qkv.weight", ".attn.in_proj_weight");
    replace_first(t, ".attn.qkv.bias", ".attn.in_proj_bias");
    replace_first(t, ".attn.proj.", ".attn.out_proj.");
    replace_first(t, ".mlp.fc1.", ".mlp.c_fc.");
    replace_first(t, ".mlp.fc2.", ".mlp.c_proj.");
  }
  return t;  // token_embedding.weight, positional_embedding, ln_final.*
}

// A gray patch embedding [W, 1, p, p] as an RGB one [W, 3, p, p] that gives the same result on
// an image whose three channels are equal — which open_clip's preprocessing (it converts every
// image to RGB) makes of a gray image.
Tensor gray_to_rgb_patches(const Tensor& w) {
  const std::vector<float> v = w.to_vector<float>();
  const int64_t out = w.size(0), k = w.size(2) * w.size(3);
  std::vector<float> rgb(size_t(out * 3 * k));
  for (int64_t o = 0; o < out; ++o)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t i = 0; i < k; ++i) rgb[size_t((o * 3 + c) * k + i)] = v[size_t(o * k + i)] / 3.f;
  return Tensor::from_vector(rgb, {out, 3, w.size(2), w.size(3)});
}

// The inverse for weights that read RGB: a gray image is an RGB one with equal channels, so the
// gray filter is the sum of the three (what timm does when it loads RGB weights with in_chans=1).
Tensor rgb_to_gray_patches(const Tensor& w) {
  const std::vector<float> v = w.to_vector<float>();
  const int64_t out = w.size(0), in = w.size(1), k = w.size(2) * w.size(3);
  std::vector<float> gray(size_t(out * k), 0.f);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t c = 0; c < in; ++c)
      for (int64_t i = 0; i < k; ++i) gray[size_t(o * k + i)] += v[size_t((o * in + c) * k + i)];
  return Tensor::from_vector(gray, {out, 1, w.size(2), w.size(3)});
}

std::string json_list(const std::vector<double>& values) { return fmt::format("[{}]", fmt::join(values, ", ")); }

std::string json_strings(const std::vector<std::string>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + JsonObject::quote(values[i]);
  return out + "]";
}

// data.mean / data.std as one value per channel (a recipe may give one value for all).
std::vector<double> per_channel(const Recipe& recipe, const std::string& key, int64_t channels) {
  std::vector<double> v = recipe.section("data").numbers(key);
  if (v.size() == 1) v.assign(size_t(channels), v[0]);
  return v;
}

// timm's config.json for a local folder (timm/models/_hub.py): an architecture whose entry point
// takes our sizes as keyword arguments, the sizes, and how inputs are prepared.
std::string timm_config(const nn::ViTConfig& c, int64_t in_chans, int64_t num_classes, const std::vector<double>& mean,
                        const std::vector<double>& std, const std::vector<std::string>& labels) {
  const bool cls = c.pooling == nn::ViTConfig::Pooling::cls;
  JsonObject args;
  args.add("img_size", c.image_size).add("patch_size", c.patch_size).add("in_chans", in_chans)
      .add("embed_dim", c.width).add("depth", c.depth).add("num_heads", c.heads).add("mlp_ratio", c.mlp_ratio)
      .add_json("qkv_bias", c.qkv_bias ? "true" : "false").add_json("class_token", cls ? "true" : "false")
      .add("global_pool", cls ? "token" : "avg")
      // Tessera normalises the tokens before pooling them; timm's default for average pooling
      // (fc_norm) normalises the pooled vector instead.
      .add_json("fc_norm", "false").add("num_classes", num_classes);
  JsonObject pretrained;
  pretrained.add_json("input_size", fmt::format("[{}, {}, {}]", in_chans, c.image_size, c.image_size))
      .add_json("mean", json_list(mean)).add_json("std", json_list(std)).add("interpolation", "bicubic")
      .add("crop_pct", 1.0).add("crop_mode", "center").add("num_classes", num_classes)
      .add("first_conv", "patch_embed.proj").add("classifier", "head");
  if (!labels.empty() && int64_t(labels.size()) == num_classes) pretrained.add_json("label_names", json_strings(labels));
  JsonObject root;
  root.add("architecture", "vit_tiny_patch16_224").add("num_classes", num_classes).add("num_features", c.width)
      .add("global_pool", cls ? "token" : "avg").add_json("model_args", args.str())
      .add_json("pretrained_cfg", pretrained.str());
  return root.str() + "\n";
}

std::string open_clip_config(const nn::DualEncoderConfig& c, const fs::path& folder, const std::vector<double>& mean,
                             const std::vector<double>& std, bool has_logit_bias) {
  const bool cls = c.image.pooling == nn::ViTConfig::Pooling::cls;
  JsonObject vision;
  vision.add("image_size", c.image.image_size)
      .add("timm_model_name", "local-dir:" + fs::absolute(folder).lexically_normal().string())
      .add_json("timm_model_pretrained", "false").add("timm_pool", cls ? "token" : "avg").add("timm_proj", "linear")
      .add_json("timm_proj_bias", "false");
  JsonObject norm;
  norm.add("eps", c.text.norm_eps);
  JsonObject text;
  text.add("context_length", c.text.context).add("vocab_size", c.text.vocab_size).add("width", c.text.width)
      .add("heads", c.text.heads).add("layers", c.text.depth).add("mlp_ratio", c.text.mlp_ratio)
      .add("pad_id", c.text.pad_id).add("eos_id", int64_t(258)).add("pool_type", "eos").add_json("proj_bias", "false")
      .add_json("norm_kwargs", norm.str());
  JsonObject model;
  model.add("embed_dim", c.embed_dim).add_json("quick_gelu", "false").add_json("vision_cfg", vision.str())
      .add_json("text_cfg", text.str());
  if (has_logit_bias) model.add("init_logit_bias", c.init_logit_bias);
  std::vector<double> mean3 = mean, std3 = std;
  if (mean3.size() == 1) mean3.assign(3, mean[0]), std3.assign(3, std[0]);
  JsonObject preprocess;
  preprocess.add_json("size", fmt::format("[{}, {}]", c.image.image_size, c.image.image_size))
      .add_json("mean", json_list(mean3)).add_json("std", json_list(std3)).add("interpolation", "bicubic")
      .add("resize_mode", "squash");
  JsonObject root;
  root.add_json("model_cfg", model.str()).add_json("preprocess_cfg", preprocess.str());
  return root.str() + "\n";
}

NamedTensorList parameters_of(const nn::Module& m) {
  NamedTensorList out;
  for (const auto& [name, t] : m.named_parameters()) out.emplace_back(name, t.detach());
  return out;
}

NamedTensorList buffers_of(const nn::Module& m) {
  NamedTensorList out;
  for (const auto& [name, t] : m.named_buffers()) out.emplace_back(name, t.detach());
  return out;
}

[[noreturn]] void cannot(const TrainedModel& model, WeightNames names, const std::string& why) {
  fail("export --names {}: {} holds a '{}' model, which {} (--names tessera exports any model)",
       weight_names_name(names), model.path(), model.type(), why);
}

}  // namespace

ExportedWeights export_weights(const TrainedModel& model, WeightNames names, const fs::path& file) {
  ExportedWeights out;
  const fs::path folder = file.parent_path();
  nn::Module& module = model.module();
  const Recipe& recipe = model.recipe();
  const DataShape& shape = model.shape();
  const std::string folder_text = folder.empty() ? "." : folder.string();
  if (names == WeightNames::tessera) {
    out.params = parameters_of(module);
    out.buffers = buffers_of(module);
    out.how_to_load = fmt::format("safetensors.torch.load_file(\"{}\")  # or model.from: {} in a recipe", file.string(), file.string());
    return out;
  }

  auto* classifier = dynamic_cast<nn::ViTClassifier*>(&module);
  auto* dual = dynamic_cast<nn::DualEncoder*>(&module);
  const std::vector<double> mean = per_channel(recipe, "mean", shape.channels), std = per_channel(recipe, "std", shape.channels);

  if (names == WeightNames::timm) {
    if (!classifier && !dual) cannot(model, names, "is not a ViT (timm's VisionTransformer holds ViTs and dual encoders' image towers)");
    const nn::VisionTransformer& vit = classifier ? classifier->vit() : *dual->visual;
    if (vit.config().stem == nn::ViTConfig::Stem::conv)
      cannot(model, names, "has a convolutional stem (model.patch_stem: conv), for which timm's VisionTransformer has "
                           "no layout");
    const std::string prefix = classifier ? "" : "visual.";
    // The ViT's parameters, and a fixed sin-cos position table (a buffer here, a parameter in timm).
    for (const auto& [name, t] : module.state())
      if (starts_with(name, prefix)) out.params.emplace_back(name.substr(prefix.size()), t.detach());
    const int64_t classes = classifier ? vit.config().num_classes : 0;
    out.configs.emplace_back("config.json", timm_config(vit.config(), shape.channels, classes, mean, std,
                                                        classifier ? shape.class_names : std::vector<std::string>{}));
    out.how_to_load = fmt::format("timm.create_model(\"local-dir:{}\", pretrained=True)", folder_text);
    if (dual) out.how_to_load += "  # the image tower: pooled features, before visual_projection";
    return out;
  }

  if (!dual) cannot(model, names, "is not a dual encoder (open_clip holds CLIP and SigLIP models)");
  const nn::DualEncoderConfig& c = dual->config();
  if (c.text.pooling != nn::TextTransformerConfig::Pooling::eos)
    cannot(model, names, "reads its text by mean pooling over non-pad tokens; open_clip's text tower has no padding mask "
                         "(train it with model.text.pooling: eos to export it to open_clip)");
  if (!dual->text->text_projection) cannot(model, names, "has no text projection");
  if (c.image.stem == nn::ViTConfig::Stem::conv)
    cannot(model, names, "has a convolutional image stem (model.image.patch_stem: conv), for which open_clip's timm "
                         "image tower has no layout");
  if (dual->patch_head)
    cannot(model, names, "has a patch head (model.patch_head), for which open_clip has no place (--names timm exports "
                         "its image tower)");
  bool has_bias = false;
  for (const auto& [name, t] : module.state()) {
    const std::string to = open_clip_name(name);
    if (to.empty()) fail("export --names open_clip: {} has a tensor '{}' that open_clip has no place for", model.path(), name);
    Tensor v = t.detach();
    if (name == "text.text_projection.weight") v = v.t().contiguous();
    else if (name == "logit_scale" || name == "logit_bias") v = v.reshape({});
    else if (name == "visual.patch_embed.proj.weight" && shape.channels == 1) v = gray_to_rgb_patches(v);
    has_bias = has_bias || name == "logit_bias";
    out.params.emplace_back(to, v);
  }
  out.configs.emplace_back("open_clip_config.json", open_clip_config(c, folder, mean, std, has_bias));
  // The image tower open_clip builds through timm reads RGB (channels = 1 exported as 3 equal ones).
  out.configs.emplace_back("config.json", timm_config(c.image, shape.channels == 1 ? 3 : shape.channels, 0,
                                                      shape.channels == 1 ? std::vector<double>(3, mean[0]) : mean,
                                                      shape.channels == 1 ? std::vector<double>(3, std[0]) : std, {}));
  out.how_to_load = fmt::format("open_clip.create_model_and_transforms(\"local-dir:{}\")", folder_text);
  return out;
}

std::map<std::string, Tensor> read_weights_for(const nn::Module& module, const std::string& path, const std::string& what) {
  // name -> tensor as the file has them
  std::map<std::string, Tensor> file;
  bool open_clip = false;
  if (is_safetensors_path(path)) {
    for (auto& [name, t] : read_safetensors(path).tensors) file[name] = t;
    const fs::path buffers = buffers_path_for(path);
    if (fs::exists(buffers))
      for (auto& [name, t] : read_safetensors(buffers.string()).tensors)
        if (!file.emplace(name, t).second) fail("{}: {} and {} both hold '{}'", what, path, buffers.string(), name);
    for (const auto& [name, t] : file)
      if (starts_with(name, "visual.trunk.") || starts_with(name, "transformer.resblocks.")) open_clip = true;
  } else {
    const Checkpoint c = load_checkpoint(path);
    file = evaluation_weights(c, Recipe::parse(c.meta.recipe, path + " (stored recipe)"), path);
  }

  std::map<std::string, Tensor> out;
  std::set<std::string> used, parameters;
  for (const auto& [name, t] : module.named_parameters()) parameters.insert(name);
  for (const auto& [name, target] : module.state()) {
    const bool is_parameter = parameters.count(name) > 0;
    const std::string key = open_clip ? open_clip_name(name) : name;
    const auto it = key.empty() ? file.end() : file.find(key);
    if (it == file.end()) {
      if (!is_parameter) continue;  // a buffer keeps its initial value (a fixed table, fresh state)
      fail("{}: {} has no '{}'{}, which the model needs (shape {}); are the recipe's model settings those the weights "
           "were trained with?", what, path, key.empty() ? name : key, open_clip ? " (open_clip names)" : "",
           target.shape_string());
    }
    used.insert(key);
    Tensor v = it->second;
    if (v.dtype() != target.dtype()) v = v.to(target.dtype());
    if (open_clip && key == "text_projection" && v.dim() == 2) v = v.t().contiguous();  // x @ W there, W x here
    if (v.shape() != target.shape()) {
      if (v.numel() == 1 && target.numel() == 1)
        v = v.reshape(target.shape());
      else if (v.dim() == 4 && target.dim() == 4 && target.size(1) == 1 && v.size(1) == 3 && v.size(0) == target.size(0) &&
               v.size(2) == target.size(2) && v.size(3) == target.size(3))
        v = rgb_to_gray_patches(v);  // RGB weights for gray images
      else
        fail("{}: '{}' in {} has shape {}, but the model's {} is {}; set the recipe's model sizes as the weights were "
             "trained", what, key, path, v.shape_string(), name, target.shape_string());
    }
    out[name] = v;
  }
  std::vector<std::string> extra;
  for (const auto& [name, t] : file)
    if (!used.count(name)) extra.push_back(name);
  if (!extra.empty()) {
    const bool fc_norm = std::any_of(extra.begin(), extra.end(), [](const std::string& n) { return n.find("fc_norm.") != std::string::npos; });
    fail("{}: {} holds {} tensor{} the model has no place for: {}{}{}", what, path, extra.size(), extra.size() == 1 ? "" : "s",
         fmt::join(extra.begin(), extra.begin() + std::min<ptrdiff_t>(5, ptrdiff_t(extra.size())), ", "),
         extra.size() > 5 ? ", ..." : "",
         fc_norm ? " (fc_norm: that ViT normalises the pooled vector; Tessera's normalises the tokens before pooling, "
                   "as timm's fc_norm=False)" : "");
  }
  return out;
}

}  // namespace tessera::train
