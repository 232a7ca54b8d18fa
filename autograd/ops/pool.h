#pragma once
// Average pooling and nearest-neighbour upsampling on NCHW images, as torch.nn.functional.
#include <cstdint>

#include "autograd/ops/conv.h"  // Size2
#include "autograd/tensor.h"

namespace tessera {

// Mean over kernel windows; padding counts as zeros in the mean (PyTorch's count_include_pad).
// stride {0, 0} means the kernel size.
Tensor avg_pool2d(const Tensor& x, Size2 kernel, Size2 stride = {0, 0}, Size2 padding = {0, 0});

// Each pixel repeated scale_h x scale_w times: [N, C, H, W] -> [N, C, H scale_h, W scale_w].
Tensor upsample_nearest2d(const Tensor& x, int64_t scale_h, int64_t scale_w);

}  // namespace tessera
