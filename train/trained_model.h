#pragma once
// A trained model as a checkpoint holds it, rebuilt in one place for every command that reads
// checkpoints (eval, tokenize, decode, embed, classify, probe, and whatever comes next): the
// recipe stored in the checkpoint builds the model, which gets the checkpoint's weights — the EMA
// weights when the run kept them and its recipe evaluates with them (eval.use_ema) — in eval
// mode. Commands then ask it for what they need through nn/capabilities.h, never by model type.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/loader.h"
#include "nn/capabilities.h"
#include "nn/module.h"
#include "train/checkpoint.h"
#include "train/models/model_registry.h"
#include "train/recipe.h"

namespace tessera::train {

class TrainedModel {
 public:
  // `data`, when the caller already has the data set the model will read: its class names (as the
  // recipe's data.class_names renames them) reach the model's builder — dual encoders make their
  // zero-shot prompts from them — and its images must have the model's shape. Without it the
  // model gets the recipe's data.class_names, if any. Throws naming the file at fault.
  // `overrides` ("key=value", as `--set`) change the stored recipe first — settings that do not
  // change the weights' shapes, such as model.sampling.guidance of a diffusion model.
  static TrainedModel load(const std::string& checkpoint, const data::DatasetInfo* data = nullptr,
                           const std::vector<std::string>& overrides = {});
  // The recipe a checkpoint stores, read without its tensors (to find its data before loading).
  static Recipe stored_recipe(const std::string& checkpoint);

  const std::string& path() const { return path_; }
  const Recipe& recipe() const { return recipe_; }
  const std::string& type() const { return type_; }  // model.type, for messages and file attributes
  int64_t step() const { return step_; }
  bool uses_ema() const { return uses_ema_; }
  const DataShape& shape() const { return shape_; }  // what the model was built for
  nn::Module& module() const { return *module_; }
  const std::shared_ptr<nn::Module>& shared_module() const { return module_; }  // to keep it as a part of another model

  // The capability, or nullptr when the model lacks it.
  template <class Capability>
  Capability* find() const {
    return nn::capability<Capability>(*module_);
  }
  // The capability, or an error naming the checkpoint, its model and `what` the caller wanted to do.
  template <class Capability>
  Capability& need(const std::string& what) const {
    if (Capability* c = find<Capability>()) return *c;
    fail_lacks(what);
  }

  // Throws naming `dataset_path` when its images differ in shape from the model's.
  void check_images(const data::DatasetInfo& info, const std::string& dataset_path) const;
  // The recipe's evaluation loader for images and labels (no captions, no renamed classes);
  // batch_size 0 = the recipe's eval.batch_size.
  data::LoaderOptions image_loader(int64_t batch_size = 0) const;
  // Hands the first `limit` images of `dataset` (-1: all), in file order and normalised as the
  // recipe's evaluation does, to `fn` a batch at a time, without gradients.
  void for_each_batch(const std::shared_ptr<data::Dataset>& dataset, const std::string& dataset_path,
                      int64_t batch_size, int64_t limit, const std::function<void(const data::Batch&)>& fn) const;

 private:
  TrainedModel(std::string path, Recipe recipe) : path_(std::move(path)), recipe_(std::move(recipe)) {}
  [[noreturn]] void fail_lacks(const std::string& what) const;

  std::string path_;
  Recipe recipe_;
  std::string type_;
  int64_t step_ = 0;
  bool uses_ema_ = false;
  DataShape shape_;
  std::shared_ptr<nn::Module> module_;
};

// The weights a checkpoint is evaluated with: its parameters and buffers, the EMA weights in
// place of the parameters when the run kept them and `stored` (its recipe) evaluates with them
// (eval.use_ema); `uses_ema`, if given, says which. Refused by name when a weight is not finite.
std::map<std::string, Tensor> evaluation_weights(const Checkpoint& checkpoint, const Recipe& stored,
                                                 const std::string& path, bool* uses_ema = nullptr);

// Images `indices` of `set` as the model's evaluation sees them, [N, C, H, W] ([N, F, C, H, W] for
// a clip file): (pixel / 255 - mean) / std per channel of `options`.
Tensor normalised_images(const data::Dataset& set, const std::vector<int64_t>& indices, const data::LoaderOptions& options);
// `prompt` with "{objects}" replaced by the classes of scene `index` (as `names` spells them),
// " ; "-joined in class order: the evaluation's detect prompt for that scene. In a clip, the
// classes of the frame a "detect in frame K: {objects}" prompt names, else of every frame.
std::string fill_object_prompt(const std::string& prompt, const data::Dataset& set, int64_t index,
                               const std::vector<std::string>& names);

}  // namespace tessera::train
