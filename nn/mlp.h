#pragma once
// A multilayer perceptron on flattened inputs: Linear layers with an activation between them (none after the last).
// Inputs [B, ...] are flattened to [B, in_features] first, so an image batch [B, C, H, W] goes
// in as it comes from the loader. Parameters are named layers.0.weight, layers.0.bias, ...
#include <string>
#include <vector>

#include "nn/activation.h"
#include "nn/capabilities.h"
#include "nn/linear.h"

namespace tessera::nn {

class FlattenMLP : public UnaryModule, public ImageToLogits {
 public:
  FlattenMLP(int64_t in_features, const std::vector<int64_t>& hidden, int64_t out_features, Activation activation,
      Generator& gen);
  Tensor forward(const Tensor& x) override;
  Tensor logits(const Tensor& images) override { return forward(images); }

  int64_t in_features;
  Activation activation;
  std::vector<std::shared_ptr<Linear>> layers;
};

}  // namespace tessera::nn
