#pragma once
// The model registry (model.type): each model registers a factory in its own file here, which
// builds the module from its recipe section and what the data set says. What a model can do
// beyond training (tokenize, decode, embed ...) it declares through nn/capabilities.h, not here.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/random.h"
#include "nn/module.h"
#include "train/registry.h"

namespace tessera::train {

// What a model builder may know about the data, so recipes need not repeat it.
struct DataShape {
  int64_t channels = 0, height = 0, width = 0;
  int64_t num_classes = 0;  // 0 when the data set has no labels
  std::vector<std::string> class_names;  // the labels' names (zero-shot prompts of dual encoders)
  std::vector<std::string> object_class_names;  // scene data sets: the objects' class names
  // Set when a checkpoint's weights will replace the built model's (a trained model being loaded),
  // so that a builder skips reading pretrained parts from elsewhere (model.image_encoder.from).
  bool weights_follow = false;
  // The recipe's data.train, for builders that measure something on the training images before
  // training (latent_dit's latent scale) or evaluate against them.
  std::string train_path;
  int64_t frames = 0;  // images per sample (clips: F > 1); 0 when no data set was read
};

using ModelFactory = std::function<std::shared_ptr<nn::Module>(const Section& model, const DataShape& data, Generator& gen)>;

Registry<ModelFactory>& models();

}  // namespace tessera::train
