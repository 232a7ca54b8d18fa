#pragma once
// Activations in nn: the one vocabulary of kernels/activation.h (nn::Activation is that enum),
// read from recipe names, and the layers, each a wrapper of the elementwise op of the same name.
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "nn/module.h"

namespace tessera::nn {

using kernels::Activation;

// The activation a recipe names ("relu", "gelu", "silu", "tanh", ...); throws naming the known ones.
Activation activation_from_name(const std::string& name);
// Every activation's name, identity first: the choices a recipe key naming an activation offers.
std::vector<std::string> activation_choices();

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
