#pragma once
// LayerNorm over the last axis, as torch.nn.LayerNorm(dim): parameters `weight` (ones) and
// `bias` (zeros), each [dim].
#include "nn/module.h"

namespace tessera::nn {

class LayerNorm : public UnaryModule {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-5, bool affine = true);
  Tensor forward(const Tensor& x) override;

  Tensor weight;  // undefined without affine
  Tensor bias;
  int64_t dim;
  double eps;
};

}  // namespace tessera::nn
