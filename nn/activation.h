#pragma once
// Activation layers, each a wrapper of the elementwise op of the same name in autograd/ops.h.
#include "autograd/ops.h"
#include "nn/module.h"

namespace tessera::nn {

class ReLU : public UnaryModule {
 public:
  Tensor forward(const Tensor& x) override { return relu(x); }
};

class GELU : public UnaryModule {
 public:
  explicit GELU(GeluApproximation approximation = GeluApproximation::none) : approximation(approximation) {}
  Tensor forward(const Tensor& x) override { return gelu(x, approximation); }
  GeluApproximation approximation;
};

class SiLU : public UnaryModule {
 public:
  Tensor forward(const Tensor& x) override { return silu(x); }
};

class Tanh : public UnaryModule {
 public:
  Tensor forward(const Tensor& x) override { return tanh(x); }
};

class Sigmoid : public UnaryModule {
 public:
  Tensor forward(const Tensor& x) override { return sigmoid(x); }
};

}  // namespace tessera::nn
