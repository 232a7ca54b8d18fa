// model.type: mlp — a multilayer perceptron classifier on flattened images (nn/mlp.h).
#include "nn/mlp.h"
#include "train/models/model_registry.h"

namespace tessera::train {
namespace {

std::shared_ptr<nn::Module> build_mlp(const Section& s, const DataShape& data, Generator& gen) {
  if (data.num_classes < 2) fail("model.type mlp is a classifier: the data set needs labels with at least 2 classes");
  return std::make_shared<nn::FlattenMLP>(data.channels * data.height * data.width, s.integers("hidden"), data.num_classes,
                                          nn::activation_from_name(s.string("activation")), gen);
}

const Registration<ModelFactory> mlp{
    models(),
    {"mlp", "multilayer perceptron on flattened images", "classification",
     {integer_list("hidden", "[256]", "widths of the hidden layers", 1),
      string("activation", "relu", "activation between layers", nn::activation_choices())},
     build_mlp}};

}  // namespace
}  // namespace tessera::train
