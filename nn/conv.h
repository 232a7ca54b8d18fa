#pragma once
// 2-D convolution layers on NCHW images, weights laid out and initialised as PyTorch's
// nn.Conv2d ([out, in/groups, kh, kw]) and nn.ConvTranspose2d ([in, out/groups, kh, kw]).
#include "autograd/ops/conv.h"
#include "autograd/random.h"
#include "nn/module.h"

namespace tessera::nn {

class Conv2d : public UnaryModule {
 public:
  // Weight and bias uniform in +-1/sqrt(fan_in), fan_in = in/groups kh kw (PyTorch's default).
  Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel, const Conv2dOptions& options, bool bias,
         Generator& gen);
  Tensor forward(const Tensor& x) override;

  Tensor weight;
  Tensor bias;  // undefined without bias
  int64_t in_channels, out_channels;
  Conv2dOptions options;
};

class ConvTranspose2d : public UnaryModule {
 public:
  // Initialised as PyTorch does, with fan_in = out/groups kh kw (the weight's dim 1).
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, Size2 kernel, const ConvTranspose2dOptions& options,
                  bool bias, Generator& gen);
  Tensor forward(const Tensor& x) override;

  Tensor weight;
  Tensor bias;
  int64_t in_channels, out_channels;
  ConvTranspose2dOptions options;
};

}  // namespace tessera::nn
