#pragma once
// Resampling layers for conv encoders and decoders: nearest-neighbour Upsample and AvgPool2d.
#include "autograd/ops/pool.h"
#include "nn/module.h"

namespace tessera::nn {

class Upsample : public UnaryModule {
 public:
  explicit Upsample(int64_t scale) : Upsample(scale, scale) {}
  Upsample(int64_t scale_h, int64_t scale_w);
  Tensor forward(const Tensor& x) override { return upsample_nearest2d(x, scale_h, scale_w); }
  int64_t scale_h, scale_w;
};

class AvgPool2d : public UnaryModule {
 public:
  // stride {0, 0} = the kernel size
  explicit AvgPool2d(Size2 kernel, Size2 stride = {0, 0}, Size2 padding = {0, 0});
  Tensor forward(const Tensor& x) override { return avg_pool2d(x, kernel, stride, padding); }
  Size2 kernel, stride, padding;
};

}  // namespace tessera::nn
