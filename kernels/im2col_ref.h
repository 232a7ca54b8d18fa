#pragma once
// Scalar reference of im2col / col2im (see im2col.h): the definition, element by element.
#include <cstdint>

#include "kernels/im2col.h"

namespace tessera::kernels::ref {

template <class T>
void im2col(const Conv2dGeometry& g, const T* image, T* col) {
  const int64_t oh = g.out_h(), ow = g.out_w();
  for (int64_t c = 0; c < g.channels; ++c)
    for (int64_t i = 0; i < g.kernel_h; ++i)
      for (int64_t j = 0; j < g.kernel_w; ++j) {
        const int64_t row = (c * g.kernel_h + i) * g.kernel_w + j;
        for (int64_t oy = 0; oy < oh; ++oy)
          for (int64_t ox = 0; ox < ow; ++ox) {
            const int64_t y = oy * g.stride_h - g.pad_h + i * g.dilation_h;
            const int64_t x = ox * g.stride_w - g.pad_w + j * g.dilation_w;
            const bool inside = y >= 0 && y < g.height && x >= 0 && x < g.width;
            col[row * oh * ow + oy * ow + ox] = inside ? image[(c * g.height + y) * g.width + x] : T(0);
          }
      }
}

template <class T>
void col2im(const Conv2dGeometry& g, const T* col, T* image) {
  const int64_t oh = g.out_h(), ow = g.out_w();
  for (int64_t k = 0; k < g.channels * g.height * g.width; ++k) image[k] = T(0);
  for (int64_t c = 0; c < g.channels; ++c)
    for (int64_t i = 0; i < g.kernel_h; ++i)
      for (int64_t j = 0; j < g.kernel_w; ++j) {
        const int64_t row = (c * g.kernel_h + i) * g.kernel_w + j;
        for (int64_t oy = 0; oy < oh; ++oy)
          for (int64_t ox = 0; ox < ow; ++ox) {
            const int64_t y = oy * g.stride_h - g.pad_h + i * g.dilation_h;
            const int64_t x = ox * g.stride_w - g.pad_w + j * g.dilation_w;
            if (y >= 0 && y < g.height && x >= 0 && x < g.width)
              image[(c * g.height + y) * g.width + x] += col[row * oh * ow + oy * ow + ox];
          }
      }
}

}  // namespace tessera::kernels::ref
