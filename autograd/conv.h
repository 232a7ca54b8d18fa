#pragma once
// Spatial ops on NCHW images: 2-D convolution and its transpose (im2col + GEMM), average pooling
// and nearest-neighbour upsampling. Shapes and arguments follow torch.nn.functional.
#include <array>
#include <cstdint>

#include "autograd/tensor.h"

namespace tessera {

// (height, width) pair of a spatial argument.
using Size2 = std::array<int64_t, 2>;

struct Conv2dOptions {
  Size2 stride{1, 1};
  Size2 padding{0, 0};  // zeros on each side
  Size2 dilation{1, 1};
  int64_t groups = 1;
};

// x [N, C, H, W], weight [O, C/groups, kh, kw], bias [O] or undefined -> [N, O, OH, OW] with
// OH = (H + 2 pad - dilation (kh - 1) - 1) / stride + 1.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), const Conv2dOptions& options = {});

struct ConvTranspose2dOptions {
  Size2 stride{1, 1};
  Size2 padding{0, 0};
  Size2 output_padding{0, 0};  // extra rows/cols on the bottom/right; less than stride or dilation
  Size2 dilation{1, 1};
  int64_t groups = 1;
};

// The adjoint of conv2d in x: x [N, C, H, W], weight [C, O/groups, kh, kw], bias [O] ->
// [N, O, OH, OW] with OH = (H - 1) stride - 2 pad + dilation (kh - 1) + output_padding + 1.
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
                        const ConvTranspose2dOptions& options = {});

// Mean over kernel windows; padding counts as zeros in the mean (PyTorch's count_include_pad).
// stride {0, 0} means the kernel size.
Tensor avg_pool2d(const Tensor& x, Size2 kernel, Size2 stride = {0, 0}, Size2 padding = {0, 0});

// Each pixel repeated scale_h x scale_w times: [N, C, H, W] -> [N, C, H scale_h, W scale_w].
Tensor upsample_nearest2d(const Tensor& x, int64_t scale_h, int64_t scale_w);

}  // namespace tessera
