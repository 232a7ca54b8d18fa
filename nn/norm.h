#pragma once
// GroupNorm as PyTorch's nn.GroupNorm: weight ones and bias zeros, each [channels].
#include "nn/module.h"

namespace tessera::nn {

class GroupNorm : public UnaryModule {
 public:
  GroupNorm(int64_t num_groups, int64_t num_channels, double eps = 1e-5, bool affine = true);
  Tensor forward(const Tensor& x) override;

  Tensor weight;  // undefined unless affine
  Tensor bias;
  int64_t num_groups, num_channels;
  double eps;
};

}  // namespace tessera::nn
