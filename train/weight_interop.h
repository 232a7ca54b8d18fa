#pragma once
// Weights in and out of Tessera under the names other libraries use (docs/INTEROP.md):
//   tessera    every model: Tessera's own names; buffers (VQ state, fixed tables) in a second file
//   timm       a ViT (or a dual encoder's image tower) as timm's VisionTransformer
//   open_clip  a CLIP/SigLIP dual encoder as open_clip's CLIP, with a timm image tower
// For timm and open_clip a config file is written beside the weights, so that the one line
// `timm.create_model("local-dir:DIR", pretrained=True)` or
// `open_clip.create_model_and_transforms("local-dir:DIR")` builds the model and loads them.
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "nn/module.h"
#include "train/safetensors.h"
#include "train/trained_model.h"

namespace tessera::train {

enum class WeightNames { tessera, timm, open_clip };
// "tessera", "timm" or "open_clip"; anything else is an error naming `option`.
WeightNames parse_weight_names(const std::string& option, const std::string& value);
const char* weight_names_name(WeightNames names);

struct ExportedWeights {
  NamedTensorList params;   // parameters under the chosen names and layouts
  NamedTensorList buffers;  // Tessera names only: state that is not trained (empty for timm/open_clip)
  // Config files to write beside the weights: file name -> JSON text.
  std::vector<std::pair<std::string, std::string>> configs;
  std::string how_to_load;  // a line of Python that loads the export
};

// The weights of `model` (its EMA weights when it evaluates with them) under `names`, for the
// file `file` (the configs go beside it and name its folder). Throws naming the model type when `names` cannot
// describe it exactly (a mean-pooled text tower in open_clip, a VQ model in timm).
ExportedWeights export_weights(const TrainedModel& model, WeightNames names, const std::filesystem::path& file);

// The weights in `path` for `module` under Tessera's names: a Tessera checkpoint (.h5, its
// parameters and buffers, EMA ones if it evaluates with them) or a .safetensors file under
// Tessera, timm or open_clip names (found from the names themselves), plus the buffers file
// Tessera exports beside it, if present. Every parameter of `module` must be there with its shape
// and nothing else may be: errors name the file and the tensor. `what` names the recipe key.
std::map<std::string, Tensor> read_weights_for(const nn::Module& module, const std::string& path, const std::string& what);

// Where the Tessera-named export `weights` keeps its buffers: NAME.safetensors -> NAME.buffers.safetensors.
std::filesystem::path buffers_path_for(const std::filesystem::path& weights);

}  // namespace tessera::train
