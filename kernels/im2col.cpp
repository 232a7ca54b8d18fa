#include "kernels/im2col.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/threads.h"

namespace tessera::kernels {
namespace {

// The output columns ox whose input column x = ox*SW - PW + j*DW lies in [0, width): [lo, hi).
void valid_columns(const Conv2dGeometry& g, int64_t j, int64_t ow, int64_t& lo, int64_t& hi) {
  const int64_t shift = j * g.dilation_w - g.pad_w;  // x = ox*SW + shift
  lo = shift >= 0 ? 0 : (-shift + g.stride_w - 1) / g.stride_w;
  hi = g.width - shift <= 0 ? 0 : (g.width - shift - 1) / g.stride_w + 1;
  lo = std::min(lo, ow);
  hi = std::clamp(hi, lo, ow);
}

// One row (c, i, j) of the column matrix: whole runs of zeros and, for stride 1, whole-row copies.
template <class T>
void im2col_row(const Conv2dGeometry& g, const T* image, int64_t row, T* out) {
  const int64_t oh = g.out_h(), ow = g.out_w();
  const int64_t j = row % g.kernel_w, i = (row / g.kernel_w) % g.kernel_h, c = row / (g.kernel_w * g.kernel_h);
  int64_t lo, hi;
  valid_columns(g, j, ow, lo, hi);
  const int64_t shift = j * g.dilation_w - g.pad_w;
  for (int64_t oy = 0; oy < oh; ++oy) {
    T* dst = out + oy * ow;
    const int64_t y = oy * g.stride_h - g.pad_h + i * g.dilation_h;
    if (y < 0 || y >= g.height) {
      std::fill(dst, dst + ow, T(0));
      continue;
    }
    const T* src = image + (c * g.height + y) * g.width + shift;
    std::fill(dst, dst + lo, T(0));
    if (g.stride_w == 1)
      std::memcpy(dst + lo, src + lo, size_t(hi - lo) * sizeof(T));
    else
      for (int64_t ox = lo; ox < hi; ++ox) dst[ox] = src[ox * g.stride_w];
    std::fill(dst + hi, dst + ow, T(0));
  }
}

template <class T>
void im2col_t(const Conv2dGeometry& g, const T* image, T* col) {
  check_geometry(g);
  const int64_t plane = g.out_h() * g.out_w();
  const int64_t rows = g.channels * g.kernel_h * g.kernel_w;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, plane));
  parallel_for(rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) im2col_row(g, image, r, col + r * plane);
  });
}

// Channels are independent: each thread owns whole image planes, so the sums are ordered.
template <class T>
void col2im_t(const Conv2dGeometry& g, const T* col, T* image) {
  check_geometry(g);
  const int64_t oh = g.out_h(), ow = g.out_w(), plane = oh * ow;
  parallel_for(g.channels, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      T* img = image + c * g.height * g.width;
      std::fill(img, img + g.height * g.width, T(0));
      for (int64_t i = 0; i < g.kernel_h; ++i)
        for (int64_t j = 0; j < g.kernel_w; ++j) {
          const T* src = col + ((c * g.kernel_h + i) * g.kernel_w + j) * plane;
          int64_t lo, hi;
          valid_columns(g, j, ow, lo, hi);
          const int64_t shift = j * g.dilation_w - g.pad_w;
          for (int64_t oy = 0; oy < oh; ++oy) {
            const int64_t y = oy * g.stride_h - g.pad_h + i * g.dilation_h;
            if (y < 0 || y >= g.height) continue;
            T* dst = img + y * g.width + shift;
            const T* s = src + oy * ow;
            for (int64_t ox = lo; ox < hi; ++ox) dst[ox * g.stride_w] += s[ox];
          }
        }
    }
  });
}

}  // namespace

void check_geometry(const Conv2dGeometry& g) {
  auto require = [](bool ok, const char* field, int64_t value, const char* rule) {
    if (!ok)
      throw std::invalid_argument(std::string("conv geometry: ") + field + " = " + std::to_string(value) + " " +
                                  rule);
  };
  require(g.channels > 0, "channels", g.channels, "must be positive");
  require(g.height > 0, "height", g.height, "must be positive");
  require(g.width > 0, "width", g.width, "must be positive");
  require(g.kernel_h > 0, "kernel_h", g.kernel_h, "must be positive");
  require(g.kernel_w > 0, "kernel_w", g.kernel_w, "must be positive");
  require(g.stride_h > 0, "stride_h", g.stride_h, "must be positive");
  require(g.stride_w > 0, "stride_w", g.stride_w, "must be positive");
  require(g.dilation_h > 0, "dilation_h", g.dilation_h, "must be positive");
  require(g.dilation_w > 0, "dilation_w", g.dilation_w, "must be positive");
  require(g.pad_h >= 0, "pad_h", g.pad_h, "must not be negative");
  require(g.pad_w >= 0, "pad_w", g.pad_w, "must not be negative");
  require(g.height + 2 * g.pad_h >= g.dilation_h * (g.kernel_h - 1) + 1, "kernel_h", g.kernel_h,
          "(dilated) is larger than the padded height");
  require(g.width + 2 * g.pad_w >= g.dilation_w * (g.kernel_w - 1) + 1, "kernel_w", g.kernel_w,
          "(dilated) is larger than the padded width");
}

void im2col(const Conv2dGeometry& g, const float* image, float* col) { im2col_t(g, image, col); }
void im2col(const Conv2dGeometry& g, const double* image, double* col) { im2col_t(g, image, col); }
void col2im(const Conv2dGeometry& g, const float* col, float* image) { col2im_t(g, col, image); }
void col2im(const Conv2dGeometry& g, const double* col, double* image) { col2im_t(g, col, image); }

}  // namespace tessera::kernels
