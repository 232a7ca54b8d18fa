#include "nn/sequential.h"

#include <string>

#include "autograd/error.h"

namespace tessera::nn {

Sequential::Sequential(std::vector<std::shared_ptr<UnaryModule>> layers) {
  for (auto& layer : layers) add(std::move(layer));
}

void Sequential::add(std::shared_ptr<UnaryModule> layer) {
  if (!layer) fail("Sequential: layer {} is null", layers_.size());
  register_module(std::to_string(layers_.size()), layer);
  layers_.push_back(std::move(layer));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& layer : layers_) y = layer->forward(y);
  return y;
}

const std::shared_ptr<UnaryModule>& Sequential::operator[](size_t i) const {
  if (i >= layers_.size()) fail("Sequential: index {} is out of range for {} layers", i, layers_.size());
  return layers_[i];
}

}  // namespace tessera::nn
