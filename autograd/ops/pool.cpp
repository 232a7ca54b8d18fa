// avg_pool2d and upsample_nearest2d: plain loops over [N C] planes, split across threads.
#include <algorithm>

#include "autograd/ops/pool.h"
#include "autograd/error.h"
#include "autograd/ops.h"
#include "autograd/ops/strided.h"
#include "kernels/threads.h"

namespace tessera {
namespace {

using detail::contiguous_data;

// Calls fn(plane) for every [H, W] plane of an [N, C, H, W] tensor, split across threads.
template <class Fn>
void for_planes(int64_t planes, int64_t work_per_plane, Fn&& fn) {
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(1, work_per_plane));
  kernels::parallel_for(planes, grain, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) fn(p);
  });
}

void check_image(const char* op, const Tensor& x) {
  if (x.dim() != 4) fail("{}: input must be [N, C, H, W], got {}", op, x.shape_string());
  if (!is_floating(x.dtype())) fail("{}: input must be floating-point, got {}", op, dtype_name(x.dtype()));
}

struct PoolGeometry {
  int64_t h, w, oh, ow, kh, kw, sh, sw, ph, pw;
};

// Forward: out = mean over each window of in. Backward: in is
// the output gradient and each window's share is added to out.
template <class T>
void pool_plane(const PoolGeometry& g, const T* in, T* out, bool backward) {
  const T scale = T(1) / T(g.kh * g.kw);
  for (int64_t oy = 0; oy < g.oh; ++oy) {
    const int64_t y0 = std::max<int64_t>(0, oy * g.sh - g.ph), y1 = std::min(g.h, oy * g.sh - g.ph + g.kh);
    for (int64_t ox = 0; ox < g.ow; ++ox) {
      const int64_t x0 = std::max<int64_t>(0, ox * g.sw - g.pw), x1 = std::min(g.w, ox * g.sw - g.pw + g.kw);
      if (backward) {
        const T share = in[oy * g.ow + ox] * scale;
        for (int64_t y = y0; y < y1; ++y)
          for (int64_t x = x0; x < x1; ++x) out[y * g.w + x] += share;
      } else {
        T acc = 0;
        for (int64_t y = y0; y < y1; ++y)
          for (int64_t x = x0; x < x1; ++x) acc += in[y * g.w + x];
        out[oy * g.ow + ox] = acc * scale;
      }
    }
  }
}

Tensor pool(const PoolGeometry& g, const Tensor& in, const Shape& out_shape, bool backward) {
  Tensor out = backward ? Tensor::zeros(out_shape, in.dtype()) : Tensor::empty(out_shape, in.dtype());
  const int64_t planes = out_shape[0] * out_shape[1];
  const int64_t in_plane = in.size(2) * in.size(3), out_plane = out_shape[2] * out_shape[3];
  visit_floating(in.dtype(), "avg_pool2d", [&](auto tag) {
    using T = decltype(tag);
    const T* pi = in.data<T>();
    T* po = out.data<T>();
    for_planes(planes, g.oh * g.ow * g.kh * g.kw,
               [&](int64_t p) { pool_plane(g, pi + p * in_plane, po + p * out_plane, backward); });
  });
  return out;
}

// Nearest upsampling of one plane, or (backward) the sum of each block back into one pixel.
template <class T>
void upsample_plane(const T* in, T* out, int64_t h, int64_t w, int64_t sh, int64_t sw, bool backward) {
  const int64_t ow = w * sw;
  if (backward) {
    // in: [h sh, w sw] gradient -> out: [h, w]
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        T acc = 0;
        for (int64_t i = 0; i < sh; ++i)
          for (int64_t j = 0; j < sw; ++j) acc += in[(y * sh + i) * ow + x * sw + j];
        out[y * w + x] = acc;
      }
    return;
  }
  for (int64_t y = 0; y < h; ++y) {
    T* row = out + y * sh * ow;
    for (int64_t x = 0; x < w; ++x)
      for (int64_t j = 0; j < sw; ++j) row[x * sw + j] = in[y * w + x];
    for (int64_t i = 1; i < sh; ++i) std::copy(row, row + ow, row + i * ow);
  }
}

Tensor upsample(const Tensor& in, const Shape& out_shape, int64_t h, int64_t w, int64_t sh, int64_t sw,
                bool backward) {
  Tensor out = Tensor::empty(out_shape, in.dtype());
  const int64_t planes = out_shape[0] * out_shape[1];
  const int64_t in_plane = in.size(2) * in.size(3), out_plane = out_shape[2] * out_shape[3];
  visit_floating(in.dtype(), "upsample_nearest2d", [&](auto tag) {
    using T = decltype(tag);
    const T* pi = in.data<T>();
    T* po = out.data<T>();
    for_planes(planes, h * w * sh * sw,
               [&](int64_t p) { upsample_plane(pi + p * in_plane, po + p * out_plane, h, w, sh, sw, backward); });
  });
  return out;
}

}  // namespace

Tensor avg_pool2d(const Tensor& x, Size2 kernel, Size2 stride, Size2 padding) {
  const char* op = "avg_pool2d";
  check_image(op, x);
  if (stride[0] == 0 && stride[1] == 0) stride = kernel;
  if (kernel[0] < 1 || kernel[1] < 1 || stride[0] < 1 || stride[1] < 1 || padding[0] < 0 || padding[1] < 0)
    fail("{}: kernel ({}, {}) and stride ({}, {}) must be positive and padding ({}, {}) not negative", op, kernel[0],
         kernel[1], stride[0], stride[1], padding[0], padding[1]);
  if (padding[0] * 2 > kernel[0] || padding[1] * 2 > kernel[1])
    fail("{}: padding ({}, {}) must be at most half the kernel ({}, {})", op, padding[0], padding[1], kernel[0],
         kernel[1]);
  PoolGeometry g{x.size(2), x.size(3), 0, 0, kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1]};
  if (g.h + 2 * g.ph < g.kh || g.w + 2 * g.pw < g.kw)
    fail("{}: kernel ({}, {}) is larger than the padded input {}", op, g.kh, g.kw, x.shape_string());
  g.oh = (g.h + 2 * g.ph - g.kh) / g.sh + 1;
  g.ow = (g.w + 2 * g.pw - g.kw) / g.sw + 1;
  const Shape in_shape = x.shape(), out_shape{x.size(0), x.size(1), g.oh, g.ow};
  Tensor y = pool(g, contiguous_data(x), out_shape, false);
  return record(y, op, {x}, [g, in_shape](const Tensor& grad) {
    return std::vector<Tensor>{pool(g, contiguous_data(grad), in_shape, true)};
  });
}

Tensor upsample_nearest2d(const Tensor& x, int64_t scale_h, int64_t scale_w) {
  const char* op = "upsample_nearest2d";
  check_image(op, x);
  if (scale_h < 1 || scale_w < 1) fail("{}: scale factors must be positive integers, got ({}, {})", op, scale_h, scale_w);
  const int64_t h = x.size(2), w = x.size(3);
  const Shape in_shape = x.shape(), out_shape{x.size(0), x.size(1), h * scale_h, w * scale_w};
  Tensor y = upsample(contiguous_data(x), out_shape, h, w, scale_h, scale_w, false);
  return record(y, op, {x}, [in_shape, h, w, scale_h, scale_w](const Tensor& grad) {
    return std::vector<Tensor>{upsample(contiguous_data(grad), in_shape, h, w, scale_h, scale_w, true)};
  });
}

}  // namespace tessera
