#pragma once
// Sequential chains one-input layers, registered as "0", "1", ... as PyTorch's nn.Sequential
// (so a child's parameters are named "0.weight"); Identity passes its input through.
#include <memory>
#include <vector>

#include "nn/module.h"

namespace tessera::nn {

class Sequential : public UnaryModule {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<UnaryModule>> layers);

  // Adds a layer at the end and returns it (typed, so its fields stay reachable).
  template <class M>
  std::shared_ptr<M> append(std::shared_ptr<M> layer) {
    add(layer);
    return layer;
  }
  Tensor forward(const Tensor& x) override;

  size_t size() const { return layers_.size(); }
  const std::shared_ptr<UnaryModule>& operator[](size_t i) const;

 private:
  void add(std::shared_ptr<UnaryModule> layer);
  std::vector<std::shared_ptr<UnaryModule>> layers_;
};

class Identity : public UnaryModule {
 public:
  Tensor forward(const Tensor& x) override { return x; }
};

}  // namespace tessera::nn
