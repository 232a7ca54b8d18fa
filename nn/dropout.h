#pragma once
// Dropout and DropPath (stochastic depth) layers: active in training mode only. Masks are drawn
// from the generator given at construction (the process-wide one by default), which must outlive
// the layer.
#include "autograd/random.h"
#include "nn/module.h"

namespace tessera::nn {

class Dropout : public UnaryModule {
 public:
  explicit Dropout(double p, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  double p;

 private:
  Generator* gen_;
};

// Zeroes whole samples (dim 0) with probability p and scales the rest by 1 / (1 - p), as timm's.
class DropPath : public UnaryModule {
 public:
  explicit DropPath(double p, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  double p;

 private:
  Generator* gen_;
};

}  // namespace tessera::nn
