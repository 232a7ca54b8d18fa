// `tessera export CKPT OUT.safetensors [--names tessera|timm|open_clip]`: a checkpoint's weights as
// safetensors, under Tessera's names or those timm and open_clip load in one line (with the config
// file they need written beside), parameters and buffers apart. docs/INTEROP.md has the mapping.
#include <fmt/format.h>

#include <filesystem>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "data/hdf5_util.h"
#include "train/atomic_file.h"
#include "train/command.h"
#include "train/experiment.h"
#include "train/trained_model.h"
#include "train/weight_interop.h"

namespace tessera::cli {
namespace {

namespace fs = std::filesystem;

int64_t values_in(const train::NamedTensorList& tensors) {
  int64_t n = 0;
  for (const auto& [name, t] : tensors) n += t.numel();
  return n;
}

int run_export(const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  train::WeightNames names = train::WeightNames::tessera;
  bool overwrite = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--names") {
      if (i + 1 >= args.size()) fail("--names needs a value: tessera, timm or open_clip");
      names = train::parse_weight_names(a, args[++i]);
    } else if (a == "--overwrite") {
      overwrite = true;
    } else if (a.rfind("--", 0) == 0) {
      fail("unknown option '{}' (see tessera export --help)", a);
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 2)
    fail("give a checkpoint and the file to write, e.g. tessera export runs/vit_fmnist/last.h5 "
         "exports/vit_fmnist/model.safetensors --names timm");
  const std::string& checkpoint = positional[0];
  const fs::path out = positional[1];
  if (!train::is_safetensors_path(out.string())) fail("the output {} should end in .safetensors", out.string());
  data::h5::refuse_same_file(checkpoint, out.string(), "checkpoint");

  const train::TrainedModel model = train::TrainedModel::load(checkpoint);
  NoGradGuard no_grad;
  const fs::path folder = out.parent_path();
  const train::ExportedWeights exported = train::export_weights(model, names, out);

  // Everything this export writes; none of it replaces an existing file unless asked to.
  std::vector<fs::path> targets{out};
  if (!exported.buffers.empty()) targets.push_back(train::buffers_path_for(out));
  for (const auto& [file, text] : exported.configs) targets.push_back(folder / file);
  for (const fs::path& t : targets) {
    data::h5::refuse_same_file(checkpoint, t.string(), "checkpoint");
    if (fs::exists(t) && !overwrite) fail("{} exists; pass --overwrite to replace it", t.string());
  }
  if (!folder.empty()) fs::create_directories(folder);

  const std::map<std::string, std::string> metadata{
      {"format", "pt"},
      {"tessera_checkpoint", checkpoint},
      {"tessera_model_type", model.type()},
      {"tessera_names", train::weight_names_name(names)},
      {"tessera_step", std::to_string(model.step())},
  };
  train::write_safetensors(out.string(), exported.params, metadata);
  fmt::print("{} parameters ({} values, {} names) written to {}\n", exported.params.size(), values_in(exported.params),
             train::weight_names_name(names), out.string());
  if (!exported.buffers.empty()) {
    train::write_safetensors(train::buffers_path_for(out).string(), exported.buffers, metadata);
    fmt::print("{} buffers (state that is not trained: {}) written to {}\n", exported.buffers.size(),
               exported.buffers.front().first, train::buffers_path_for(out).string());
  }
  for (const auto& [file, text] : exported.configs) {
    train::write_text_atomically(folder / file, text);
    fmt::print("config written to {}\n", (folder / file).string());
  }
  fmt::print("load it in Python with: {}\n", exported.how_to_load);
  return 0;
}

const CommandRegistration registration{
    {"export", "write a checkpoint's weights as safetensors, under Tessera's, timm's or open_clip's names",
     "usage: tessera export CKPT OUT.safetensors [--names tessera|timm|open_clip] [--overwrite]\n\n"
     "Writes the model's parameters (its EMA weights when it evaluates with them) to OUT.safetensors:\n"
     "  --names tessera    any model, Tessera's names; buffers (VQ state, fixed tables) go apart to\n"
     "                     OUT.buffers.safetensors. A recipe starts from it with model.from: OUT.\n"
     "  --names timm       a ViT (or a CLIP/SigLIP image tower) as timm's VisionTransformer; writes\n"
     "                     config.json beside it: timm.create_model(\"local-dir:DIR\", pretrained=True)\n"
     "  --names open_clip  a CLIP/SigLIP model as open_clip's CLIP with a timm image tower; writes\n"
     "                     open_clip_config.json and config.json beside it:\n"
     "                     open_clip.create_model_and_transforms(\"local-dir:DIR\")\n"
     "Give each export its own folder (timm and open_clip load the .safetensors file they find there).\n"
     "Existing files are kept unless --overwrite; the checkpoint is never written. docs/INTEROP.md\n"
     "has the name maps, the image preparation and the text tokens.",
     run_export}};

}  // namespace
}  // namespace tessera::cli
