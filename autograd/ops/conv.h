#pragma once
// 2-D convolution and its transpose on NCHW images (im2col + GEMM). Shapes and arguments follow
// torch.nn.functional.
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

}  // namespace tessera
