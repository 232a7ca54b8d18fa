#pragma once
// im2col / col2im for NCHW convolution, one image at a time: the convolution becomes a GEMM of
// the weights [out_channels, C*KH*KW] with the column matrix [C*KH*KW, OH*OW].
#include <cstdint>

namespace tessera::kernels {

struct Conv2dGeometry {
  int64_t channels = 0, height = 0, width = 0;  // of the input image
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t out_h() const { return (height + 2 * pad_h - dilation_h * (kernel_h - 1) - 1) / stride_h + 1; }
  int64_t out_w() const { return (width + 2 * pad_w - dilation_w * (kernel_w - 1) - 1) / stride_w + 1; }
};

// Throws std::invalid_argument naming the field at fault (non-positive sizes, strides or
// dilations, negative padding, or a kernel larger than the padded image).
void check_geometry(const Conv2dGeometry& g);

// col[(c*KH + i)*KW + j, oy*OW + ox] = image[c, oy*SH - PH + i*DH, ox*SW - PW + j*DW], 0 outside.
void im2col(const Conv2dGeometry& g, const float* image, float* col);
void im2col(const Conv2dGeometry& g, const double* image, double* col);

// The adjoint: image (overwritten) = the sum, over every col entry, of that entry into the pixel
// im2col read it from. Gives the input gradient of a convolution.
void col2im(const Conv2dGeometry& g, const float* col, float* image);
void col2im(const Conv2dGeometry& g, const double* col, double* image);

}  // namespace tessera::kernels
