#include "nn/resample.h"

#include "autograd/error.h"

namespace tessera::nn {

Upsample::Upsample(int64_t sh, int64_t sw) : scale_h(sh), scale_w(sw) {
  if (sh < 1 || sw < 1) fail("Upsample: scale factors must be positive integers, got ({}, {})", sh, sw);
}

AvgPool2d::AvgPool2d(Size2 k, Size2 s, Size2 p) : kernel(k), stride(s), padding(p) {
  if (stride[0] == 0 && stride[1] == 0) stride = kernel;
  if (kernel[0] < 1 || kernel[1] < 1 || stride[0] < 1 || stride[1] < 1)
    fail("AvgPool2d: kernel ({}, {}) and stride ({}, {}) must be positive", kernel[0], kernel[1], stride[0],
         stride[1]);
}

}  // namespace tessera::nn
