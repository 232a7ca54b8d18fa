#pragma once
// y = x W^T + b over the last axis of x ([..., in] -> [..., out]), W stored [out, in] as PyTorch.
#include "autograd/random.h"
#include "nn/module.h"

namespace tessera::nn {

class Linear : public UnaryModule {
 public:
  // Initialised as PyTorch's nn.Linear (uniform +-1/sqrt(in) for W and b).
  Linear(int64_t in_features, int64_t out_features, bool bias, Generator& gen);
  Tensor forward(const Tensor& x) override;

  Tensor weight;
  Tensor bias;  // undefined without bias
  int64_t in_features, out_features;
};

}  // namespace tessera::nn
