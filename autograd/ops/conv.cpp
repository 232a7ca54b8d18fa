// conv2d and conv_transpose2d through im2col + GEMM.
//
// Both ops are the same three products between an "image side" tensor I [N, Ci, IH, IW] (the one
// im2col reads and col2im writes) and a "column side" tensor S [N, Co, CH, CW] (one column per
// kernel position), with the weight as a matrix per group, W_g [Co/G, Ci/G kh kw]:
//   columns:  S = W (x) im2col(I)          conv2d forward, conv_transpose2d input gradient
//   image:    I = col2im(W^T (x) S)        conv2d input gradient, conv_transpose2d forward
//   weight:  gW = S (x) im2col(I)^T        both weight gradients (S and I in their roles)
// conv2d's weight [O, C/G, kh, kw] has O on the column side; conv_transpose2d's [C, O/G, kh, kw]
// has its input channels C there: the same matrix layout, so both ops share every routine.
//
// Samples are processed in chunks: a chunk's columns form one matrix [Ci kh kw, B CH CW], so each
// group costs one GEMM per chunk however small the image, and the column buffer stays small
// enough to be written and read back in cache. Chunks run in parallel lanes (single-threaded
// GEMMs), with results independent of the thread count.
//
// The im2col/col2im loops live here, not in kernels/im2col.h: that one fills one image's columns
// as a contiguous matrix, while these write a chunk's samples side by side (leading dimension and
// column offset), in the "wide" stride-1 layout below, and from planes padded once.
#include <algorithm>
#include <cstring>
#include <vector>

#include "autograd/ops/conv.h"
#include "autograd/error.h"
#include "autograd/ops.h"
#include "autograd/ops/strided.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/threads.h"

namespace tessera {
namespace {

using detail::contiguous_data;

// Column buffers hold at most about this many elements (512 KB in f32: a core's L2), unless one
// sample needs more.
constexpr int64_t kColumnBudget = int64_t(1) << 17;
// Batches are split into at least this many chunks (the most lanes that run at once, below).
constexpr int64_t kMinChunks = 8;

struct Geometry {
  int64_t batch = 0, groups = 1;
  int64_t ci = 0, ih = 0, iw = 0;  // image side
  int64_t co = 0, ch = 0, cw = 0;  // column side
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  bool wide = false;  // see choose_layout()

  int64_t image_plane() const { return ih * iw; }
  int64_t side_positions() const { return ch * cw; }  // pixels of one column-side plane
  int64_t pitch() const { return wide ? iw + 2 * pw : cw; }  // columns per column-side row
  int64_t positions() const { return ch * pitch(); }  // columns per sample
  int64_t group_rows() const { return ci / groups * kh * kw; }  // rows of one group's column matrix
  int64_t rows() const { return ci * kh * kw; }
  int64_t group_co() const { return co / groups; }
  // Samples per chunk: as many as the column budget allows, but at least kMinChunks chunks when
  // the batch has that many samples (so the lanes below have work to share), sizes evened out.
  int64_t chunk() const {
    const int64_t per_sample = std::max<int64_t>(1, rows() * positions());
    const int64_t n = std::max<int64_t>(batch, 1);
    const int64_t most = std::clamp<int64_t>(std::min(kColumnBudget / per_sample, (n + kMinChunks - 1) / kMinChunks),
                                             1, n);
    const int64_t chunks = (n + most - 1) / most;
    return (n + chunks - 1) / chunks;
  }
};

// Stride-1 convolutions can run on "wide" columns: one column per position of the padded width
// instead of the output width, so that each kernel row of the columns is one contiguous run of
// the padded plane (a single copy per (channel, i, j) rather than one per output row). The extra
// columns compute throw-away outputs (dropped when scattered, fed zero gradients backwards), so
// this pays when the copies, not the GEMM, dominate: few output channels, or little padding.
void choose_layout(Geometry& g) {
  if (g.sh != 1 || g.sw != 1 || g.cw <= 0) return;
  const double extra = double(g.iw + 2 * g.pw - g.cw) / double(g.cw);
  g.wide = extra <= 0.2 || g.group_co() <= 16;
}

// im2col and col2im work on a zero-padded copy of each plane, so that every kernel row of the
// columns is a plain strided walk: no bounds checks in the inner loops, which matter on the
// small images (7x7, 14x14) these layers see. Every column position lies inside the padded plane:
// (CH - 1) SH + (KH - 1) DH <= IH + 2 PH - 1 for both ops' geometries.
int64_t padded_height(const Geometry& g) { return g.ih + 2 * g.ph; }
int64_t padded_width(const Geometry& g) { return g.iw + 2 * g.pw; }

// Wide columns read up to (KW - 1) DW elements past the padded plane's end: zeros kept after it.
int64_t padded_size(const Geometry& g) {
  return padded_height(g) * padded_width(g) + (g.wide ? (g.kw - 1) * g.dw : 0);
}

// Plane c of one sample, padded into `scratch` (or itself when nothing needs adding).
template <class T>
const T* padded_plane(const Geometry& g, const T* image, int64_t c, std::vector<T>& scratch) {
  const T* plane = image + c * g.image_plane();
  if (g.ph == 0 && g.pw == 0 && padded_size(g) == g.image_plane()) return plane;
  const int64_t pw = padded_width(g);
  scratch.assign(size_t(padded_size(g)), T(0));
  for (int64_t y = 0; y < g.ih; ++y) std::memcpy(&scratch[size_t((y + g.ph) * pw + g.pw)], plane + y * g.iw, sizeof(T) * g.iw);
  return scratch.data();
}

// The inner loops, with the common horizontal strides (1, 2) known at compile time so that the
// compiler keeps every index in registers (STRIDE 0 = read it from `stride`).
template <int STRIDE, class T>
void gather_rows(const Geometry& g, const T* padded, int64_t pw, T* col_row, int64_t i, int64_t j) {
  const int64_t rows = g.ch, n = g.cw, stride = STRIDE ? STRIDE : g.sw, row_step = g.sh * pw;
  const T* __restrict src = padded + i * g.dh * pw + j * g.dw;
  T* __restrict dst = col_row;
  for (int64_t oy = 0; oy < rows; ++oy, dst += n, src += row_step)
    for (int64_t ox = 0; ox < n; ++ox) dst[ox] = src[ox * stride];
}

template <int STRIDE, class T>
void scatter_add_rows(const Geometry& g, const T* col_row, T* padded, int64_t pw, int64_t i, int64_t j) {
  const int64_t rows = g.ch, n = g.cw, stride = STRIDE ? STRIDE : g.sw, row_step = g.sh * pw;
  const T* __restrict src = col_row;
  T* __restrict dst = padded + i * g.dh * pw + j * g.dw;
  for (int64_t oy = 0; oy < rows; ++oy, src += n, dst += row_step)
    for (int64_t ox = 0; ox < n; ++ox) dst[ox * stride] += src[ox];
}

// Columns of channel c of one sample: rows (c kh + i) kw + j of `col` (leading dimension ld),
// starting at column `col0`.
template <class T>
void im2col_channel(const Geometry& g, const T* image, int64_t c, T* col, int64_t ld, int64_t col0,
                    std::vector<T>& scratch) {
  const T* padded = padded_plane(g, image, c, scratch);
  const int64_t pw = padded_width(g);
  for (int64_t i = 0; i < g.kh; ++i)
    for (int64_t j = 0; j < g.kw; ++j) {
      T* row = col + ((c * g.kh + i) * g.kw + j) * ld + col0;
      if (g.wide)
        std::memcpy(row, padded + i * g.dh * pw + j * g.dw, sizeof(T) * g.positions());
      else if (g.sw == 1) gather_rows<1>(g, padded, pw, row, i, j);
      else if (g.sw == 2) gather_rows<2>(g, padded, pw, row, i, j);
      else gather_rows<0>(g, padded, pw, row, i, j);
    }
}

// The adjoint of im2col_channel: adds the columns back into channel c of one sample, through a
// padded accumulator whose border is then dropped.
template <class T>
void col2im_channel(const Geometry& g, const T* col, int64_t ld, int64_t col0, int64_t c, T* image,
                    std::vector<T>& scratch) {
  const int64_t pw = padded_width(g);
  scratch.assign(size_t(padded_size(g)), T(0));
  T* padded = scratch.data();
  for (int64_t i = 0; i < g.kh; ++i)
    for (int64_t j = 0; j < g.kw; ++j) {
      const T* row = col + ((c * g.kh + i) * g.kw + j) * ld + col0;
      if (g.wide)
        kernels::axpy(T(1), row, padded + i * g.dh * pw + j * g.dw, g.positions());
      else if (g.sw == 1) scatter_add_rows<1>(g, row, padded, pw, i, j);
      else if (g.sw == 2) scatter_add_rows<2>(g, row, padded, pw, i, j);
      else scatter_add_rows<0>(g, row, padded, pw, i, j);
    }
  T* plane = image + c * g.image_plane();
  const int64_t ih = g.ih, iw = g.iw;
  for (int64_t y = 0; y < ih; ++y) {
    const T* __restrict from = padded + (y + g.ph) * pw + g.pw;
    T* __restrict to = plane + y * iw;
    for (int64_t x = 0; x < iw; ++x) to[x] += from[x];
  }
}

// Work items of a chunk: (sample, channel) pairs, split across threads.
template <class Fn>
void for_sample_channels(int64_t samples, int64_t channels, int64_t work_per_item, Fn&& fn) {
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(1, work_per_item));
  kernels::parallel_for(samples * channels, grain, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) fn(item / channels, item % channels);
  });
}

// Chunk samples [b0, b0 + nb) of the image side -> columns [rows, nb positions].
template <class T>
void im2col_chunk(const Geometry& g, const T* image, int64_t b0, int64_t nb, T* col) {
  const int64_t ld = nb * g.positions();
  for_sample_channels(nb, g.ci, g.kh * g.kw * g.positions(), [&](int64_t b, int64_t c) {
    thread_local std::vector<T> scratch;
    im2col_channel(g, image + (b0 + b) * g.ci * g.image_plane(), c, col, ld, b * g.positions(), scratch);
  });
}

template <class T>
void col2im_chunk(const Geometry& g, const T* col, int64_t b0, int64_t nb, T* image) {
  const int64_t ld = nb * g.positions();
  for_sample_channels(nb, g.ci, g.kh * g.kw * g.positions(), [&](int64_t b, int64_t c) {
    thread_local std::vector<T> scratch;
    col2im_channel(g, col, ld, b * g.positions(), c, image + (b0 + b) * g.ci * g.image_plane(), scratch);
  });
}

// Column side [N, Co, CH, CW] samples [b0, b0 + nb) -> matrix [Co, nb CH pitch] (zeros in the
// extra columns of wide rows, so they add nothing backwards), and back (plus a bias).
template <class T>
void gather_side(const Geometry& g, const T* side, int64_t b0, int64_t nb, T* out) {
  const int64_t L = g.positions(), P = g.side_positions(), pitch = g.pitch();
  for_sample_channels(nb, g.co, L, [&](int64_t b, int64_t c) {
    T* dst = out + c * nb * L + b * L;
    const T* src = side + ((b0 + b) * g.co + c) * P;
    if (!g.wide) {
      std::memcpy(dst, src, sizeof(T) * P);
      return;
    }
    for (int64_t y = 0; y < g.ch; ++y, dst += pitch, src += g.cw) {
      std::memcpy(dst, src, sizeof(T) * g.cw);
      std::fill(dst + g.cw, dst + pitch, T(0));
    }
  });
}

template <class T>
void scatter_side(const Geometry& g, const T* in, const T* bias, int64_t b0, int64_t nb, T* side) {
  const int64_t L = g.positions(), P = g.side_positions(), pitch = g.pitch();
  for_sample_channels(nb, g.co, L, [&](int64_t b, int64_t c) {
    const T v = bias ? bias[c] : T(0);
    const T* src = in + c * nb * L + b * L;
    T* dst = side + ((b0 + b) * g.co + c) * P;
    for (int64_t y = 0; y < g.ch; ++y, dst += g.cw, src += pitch)
      for (int64_t x = 0; x < g.cw; ++x) dst[x] = src[x] + v;
  });
}

// Chunks are dealt round-robin to a fixed number of lanes that run in parallel, each with its own
// buffers, so that a chunk's columns are written and read while still in that core's cache. The
// lane count depends on the shapes only, never on the thread count, so results do not either.
// A single lane runs on the calling thread, where im2col and GEMM use every thread themselves.
constexpr int64_t kMaxLanes = 8;
// Weight-gradient lanes each hold a partial sum; together at most this many elements.
constexpr int64_t kPartialBudget = int64_t(1) << 23;

int64_t chunk_count(const Geometry& g) { return (g.batch + g.chunk() - 1) / g.chunk(); }

// fn(lane, b0, nb, col, side_buf, side_buf2) for every chunk, with per-lane buffers of the
// chunk's columns [rows, chunk L] and column-side matrices [Co, chunk L] (the second one only
// when asked for, else null).
template <class T, class Fn>
void for_chunks(const Geometry& g, int64_t lanes, bool second_side_buffer, Fn&& fn) {
  const int64_t chunk = g.chunk(), chunks = chunk_count(g), L = g.positions();
  kernels::parallel_for(lanes, 1, [&](int64_t begin, int64_t end) {
    Tensor col_buf = Tensor::empty({g.rows() * chunk * L}, dtype_v<T>);
    Tensor side_buf = Tensor::empty({g.co * chunk * L}, dtype_v<T>);
    Tensor side_buf2 = second_side_buffer ? Tensor::empty({g.co * chunk * L}, dtype_v<T>) : Tensor();
    for (int64_t lane = begin; lane < end; ++lane)
      for (int64_t c = lane; c < chunks; c += lanes) {
        const int64_t b0 = c * chunk;
        fn(lane, b0, std::min(chunk, g.batch - b0), col_buf.data<T>(), side_buf.data<T>(),
           second_side_buffer ? side_buf2.data<T>() : nullptr);
      }
  });
}

// S = W (x) im2col(I), plus bias per column-side channel.
template <class T>
void columns_product(const Geometry& g, const T* image, const T* weight, const T* bias, T* side) {
  const int64_t L = g.positions(), R = g.group_rows(), M = g.group_co();
  const int64_t lanes = std::min(kMaxLanes, chunk_count(g));
  for_chunks<T>(g, lanes, false, [&](int64_t, int64_t b0, int64_t nb, T* col, T* out_buf, T*) {
    const int64_t n = nb * L;
    im2col_chunk(g, image, b0, nb, col);
    // A single sample's [Co, L] block is already in place in S (unless its rows are wide).
    const bool direct = nb == 1 && !g.wide;
    T* out = direct ? side + b0 * g.co * L : out_buf;
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      kernels::GemmShape s{false, false, M, n, R, R, n, n};
      kernels::gemm(s, T(1), weight + gr * M * R, col + gr * R * n, T(0), out + gr * M * n);
    }
    if (!direct) {
      scatter_side(g, out, bias, b0, nb, side);
    } else if (bias) {
      for (int64_t c = 0; c < g.co; ++c)
        for (int64_t l = 0; l < L; ++l) out[c * L + l] += bias[c];
    }
  });
}

// I = col2im(W^T (x) S); `image` must start at zero.
template <class T>
void image_product(const Geometry& g, const T* side, const T* weight, T* image) {
  const int64_t L = g.positions(), R = g.group_rows(), M = g.group_co();
  const int64_t lanes = std::min(kMaxLanes, chunk_count(g));
  for_chunks<T>(g, lanes, false, [&](int64_t, int64_t b0, int64_t nb, T* col, T* in_buf, T*) {
    const int64_t n = nb * L;
    const T* in = side + b0 * g.co * L;
    if (nb > 1 || g.wide) {
      gather_side(g, side, b0, nb, in_buf);
      in = in_buf;
    }
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      kernels::GemmShape s{true, false, R, n, M, R, n, n};
      kernels::gemm(s, T(1), weight + gr * M * R, in + gr * M * n, T(0), col + gr * R * n);
    }
    col2im_chunk(g, col, b0, nb, image);
  });
}

// The backward products, chunk by chunk, so that what two of them share is made once per chunk:
//   grad_weight = S (x) im2col(I)^T, summed over every sample (each lane into its own partial sum,
//                 the partials then added in lane order): both ops' weight gradient;
//   out         = W (x) im2col(I): conv_transpose2d's input gradient (shares the columns);
//   image_out   = col2im(W^T (x) S), added in: conv2d's input gradient (shares the gathered S).
// Any of the three may be null.
template <class T>
void backward_products(const Geometry& g, const T* image, const T* side, const T* weight, T* grad_weight, T* out,
                       T* image_out) {
  const int64_t L = g.positions(), R = g.group_rows(), M = g.group_co(), size = g.co * R;
  const int64_t most_lanes =
      grad_weight ? std::min(kPartialBudget / std::max<int64_t>(1, size), kMaxLanes) : kMaxLanes;
  const int64_t lanes = std::clamp<int64_t>(most_lanes, 1, chunk_count(g));
  Tensor partial_buf = grad_weight && lanes > 1 ? Tensor::empty({lanes * size}, dtype_v<T>) : Tensor();
  T* partials = grad_weight && lanes > 1 ? partial_buf.data<T>() : grad_weight;
  std::vector<char> started(size_t(lanes), 0);
  for_chunks<T>(g, lanes, out != nullptr, [&](int64_t lane, int64_t b0, int64_t nb, T* col, T* in_buf, T* out_buf) {
    const int64_t n = nb * L;
    const T* in = side + b0 * g.co * L;
    if ((grad_weight || image_out) && (nb > 1 || g.wide)) {
      gather_side(g, side, b0, nb, in_buf);
      in = in_buf;
    }
    if (grad_weight || out) im2col_chunk(g, image, b0, nb, col);
    if (grad_weight) {
      const T beta = started[size_t(lane)] ? T(1) : T(0);
      started[size_t(lane)] = 1;
      T* partial = partials + lane * size;
      for (int64_t gr = 0; gr < g.groups; ++gr) {
        kernels::GemmShape s{false, true, M, R, n, n, n, R};
        kernels::gemm(s, T(1), in + gr * M * n, col + gr * R * n, beta, partial + gr * M * R);
      }
    }
    if (out) {
      const bool direct = nb == 1 && !g.wide;
      T* dst = direct ? out + b0 * g.co * L : out_buf;
      for (int64_t gr = 0; gr < g.groups; ++gr) {
        kernels::GemmShape s{false, false, M, n, R, R, n, n};
        kernels::gemm(s, T(1), weight + gr * M * R, col + gr * R * n, T(0), dst + gr * M * n);
      }
      if (!direct) scatter_side(g, dst, static_cast<const T*>(nullptr), b0, nb, out);
    }
    if (image_out) {  // the columns are no longer needed: their buffer takes W^T S
      for (int64_t gr = 0; gr < g.groups; ++gr) {
        kernels::GemmShape s{true, false, R, n, M, R, n, n};
        kernels::gemm(s, T(1), weight + gr * M * R, in + gr * M * n, T(0), col + gr * R * n);
      }
      col2im_chunk(g, col, b0, nb, image_out);
    }
  });
  if (!grad_weight || lanes == 1) return;
  kernels::parallel_for(size, 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      T acc = partials[i];
      for (int64_t lane = 1; lane < lanes; ++lane) acc += partials[lane * size + i];
      grad_weight[i] = acc;
    }
  });
}

// Per-channel sums of a [N, C, L] tensor (the bias gradient).
template <class T>
void channel_sums(const T* x, int64_t n, int64_t c, int64_t l, T* out) {
  kernels::parallel_for(c, std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(1, n * l)),
                        [&](int64_t begin, int64_t end) {
                          for (int64_t ch = begin; ch < end; ++ch) {
                            double acc = 0;
                            for (int64_t b = 0; b < n; ++b) {
                              const T* p = x + (b * c + ch) * l;
                              T part = 0;
                              for (int64_t i = 0; i < l; ++i) part += p[i];
                              acc += double(part);
                            }
                            out[ch] = T(acc);
                          }
                        });
}

Tensor columns_forward(const Geometry& g, const Tensor& image, const Tensor& weight, const Tensor& bias,
                       DType dtype) {
  Tensor side = Tensor::empty({g.batch, g.co, g.ch, g.cw}, dtype);
  if (side.numel() == 0) return side;
  visit_floating(dtype, "conv2d", [&](auto tag) {
    using T = decltype(tag);
    columns_product<T>(g, image.data<T>(), weight.data<T>(), bias.defined() ? bias.data<T>() : nullptr,
                       side.data<T>());
  });
  return side;
}

Tensor image_forward(const Geometry& g, const Tensor& side, const Tensor& weight, DType dtype) {
  Tensor image = Tensor::zeros({g.batch, g.ci, g.ih, g.iw}, dtype);
  if (image.numel() == 0 || side.numel() == 0) return image;
  visit_floating(dtype, "conv_transpose2d", [&](auto tag) {
    using T = decltype(tag);
    image_product<T>(g, side.data<T>(), weight.data<T>(), image.data<T>());
  });
  return image;
}

// The input and weight gradients (either may be skipped) of conv2d (transposed = false: the
// image side is x, the column side the output gradient) or conv_transpose2d (the other way round).
std::vector<Tensor> conv_gradients(const Geometry& g, bool transposed, const Tensor& grad, const Tensor& x,
                                   const Tensor& weight, bool want_x, bool want_w) {
  Tensor gx = want_x ? Tensor::zeros(x.shape(), x.dtype()) : Tensor();
  Tensor gw = want_w ? Tensor::zeros(weight.shape(), x.dtype()) : Tensor();
  if (g.batch == 0 || grad.numel() == 0 || x.numel() == 0 || weight.numel() == 0) return {gx, gw};
  visit_floating(x.dtype(), transposed ? "conv_transpose2d backward" : "conv2d backward", [&](auto tag) {
    using T = decltype(tag);
    T* pgx = want_x ? gx.data<T>() : nullptr;
    T* pgw = want_w ? gw.data<T>() : nullptr;
    if (transposed)
      backward_products<T>(g, grad.data<T>(), x.data<T>(), weight.data<T>(), pgw, pgx, nullptr);
    else
      backward_products<T>(g, x.data<T>(), grad.data<T>(), weight.data<T>(), pgw, nullptr, pgx);
  });
  return {gx, gw};
}

Tensor bias_gradient(const Tensor& grad_out, const char* op) {
  const int64_t n = grad_out.size(0), c = grad_out.size(1), l = grad_out.size(2) * grad_out.size(3);
  Tensor gb = Tensor::empty({c}, grad_out.dtype());
  visit_floating(grad_out.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    channel_sums<T>(grad_out.data<T>(), n, c, l, gb.data<T>());
  });
  return gb;
}

// Adds bias[c] to every pixel of channel c of an [N, C, H, W] tensor, in place.
void add_channel_bias(Tensor& x, const Tensor& bias) {
  const int64_t n = x.size(0), c = x.size(1), l = x.size(2) * x.size(3);
  visit_floating(x.dtype(), "conv_transpose2d", [&](auto tag) {
    using T = decltype(tag);
    T* p = x.data<T>();
    const T* b = bias.data<T>();
    for_sample_channels(n, c, l, [&](int64_t s, int64_t ch) {
      T* q = p + (s * c + ch) * l;
      for (int64_t i = 0; i < l; ++i) q[i] += b[ch];
    });
  });
}

void check_pair(const char* op, const char* what, Size2 v, int64_t min) {
  if (v[0] < min || v[1] < min) fail("{}: {} must be at least {}, got ({}, {})", op, what, min, v[0], v[1]);
}

// Checks dtypes and the ranks shared by both ops.
void check_operands(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t groups) {
  if (x.dim() != 4) fail("{}: input must be [N, C, H, W], got {}", op, x.shape_string());
  if (weight.dim() != 4) fail("{}: weight must be 4-D, got {}", op, weight.shape_string());
  if (!is_floating(x.dtype()) || x.dtype() != weight.dtype() || (bias.defined() && bias.dtype() != x.dtype()))
    fail("{}: input {} {}, weight {} {} and bias must share a floating-point dtype", op, x.shape_string(),
         dtype_name(x.dtype()), weight.shape_string(), dtype_name(weight.dtype()));
  if (groups < 1) fail("{}: groups must be positive, got {}", op, groups);
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& o) {
  const char* op = "conv2d";
  check_operands(op, x, weight, bias, o.groups);
  check_pair(op, "stride", o.stride, 1);
  check_pair(op, "dilation", o.dilation, 1);
  check_pair(op, "padding", o.padding, 0);
  Geometry g;
  g.batch = x.size(0), g.groups = o.groups;
  g.ci = x.size(1), g.ih = x.size(2), g.iw = x.size(3);
  g.co = weight.size(0), g.kh = weight.size(2), g.kw = weight.size(3);
  g.sh = o.stride[0], g.sw = o.stride[1], g.ph = o.padding[0], g.pw = o.padding[1];
  g.dh = o.dilation[0], g.dw = o.dilation[1];
  if (g.ci % g.groups || g.co % g.groups)
    fail("{}: input channels {} and output channels {} must both divide by groups {}", op, g.ci, g.co, g.groups);
  if (weight.size(1) != g.ci / g.groups)
    fail("{}: weight {} expects {} input channels per group, the input {} has {} ({} groups)", op,
         weight.shape_string(), weight.size(1), x.shape_string(), g.ci / g.groups, g.groups);
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != g.co))
    fail("{}: bias must be [{}], got {}", op, g.co, bias.shape_string());
  const int64_t span_h = g.dh * (g.kh - 1) + 1, span_w = g.dw * (g.kw - 1) + 1;
  if (g.kh < 1 || g.kw < 1 || g.ih + 2 * g.ph < span_h || g.iw + 2 * g.pw < span_w)
    fail("{}: kernel {}x{} (dilation {}x{}) does not fit the padded input {} (padding {}x{})", op, g.kh, g.kw, g.dh,
         g.dw, x.shape_string(), g.ph, g.pw);
  g.ch = (g.ih + 2 * g.ph - span_h) / g.sh + 1;
  g.cw = (g.iw + 2 * g.pw - span_w) / g.sw + 1;
  choose_layout(g);

  const Tensor cx = contiguous_data(x), cw = contiguous_data(weight);
  const Tensor cb = bias.defined() ? contiguous_data(bias) : Tensor();
  Tensor y = columns_forward(g, cx, cw, cb, x.dtype());
  if (!needs_grad({&x, &weight, &bias})) return y;
  const bool gx = x.requires_grad(), gw = weight.requires_grad(), gb = bias.defined() && bias.requires_grad();
  return record(y, op, {x, weight, bias}, [op, g, cx, cw, gx, gw, gb](const Tensor& grad) {
    const Tensor cg = contiguous_data(grad);
    std::vector<Tensor> grads = conv_gradients(g, false, cg, cx, cw, gx, gw);
    grads.push_back(gb ? bias_gradient(cg, op) : Tensor());
    return grads;
  });
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const ConvTranspose2dOptions& o) {
  const char* op = "conv_transpose2d";
  check_operands(op, x, weight, bias, o.groups);
  check_pair(op, "stride", o.stride, 1);
  check_pair(op, "dilation", o.dilation, 1);
  check_pair(op, "padding", o.padding, 0);
  check_pair(op, "output_padding", o.output_padding, 0);
  for (int d = 0; d < 2; ++d)
    if (o.output_padding[d] >= std::max(o.stride[d], o.dilation[d]))
      fail("{}: output_padding ({}, {}) must be smaller than stride ({}, {}) or dilation ({}, {})", op,
           o.output_padding[0], o.output_padding[1], o.stride[0], o.stride[1], o.dilation[0], o.dilation[1]);
  Geometry g;
  g.batch = x.size(0), g.groups = o.groups;
  g.co = x.size(1), g.ch = x.size(2), g.cw = x.size(3);
  g.kh = weight.size(2), g.kw = weight.size(3);
  g.sh = o.stride[0], g.sw = o.stride[1], g.ph = o.padding[0], g.pw = o.padding[1];
  g.dh = o.dilation[0], g.dw = o.dilation[1];
  if (weight.size(0) != g.co)
    fail("{}: weight {} expects {} input channels, the input {} has {}", op, weight.shape_string(), weight.size(0),
         x.shape_string(), g.co);
  if (g.co % g.groups) fail("{}: input channels {} must divide by groups {}", op, g.co, g.groups);
  g.ci = weight.size(1) * g.groups;
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != g.ci))
    fail("{}: bias must be [{}], got {}", op, g.ci, bias.shape_string());
  g.ih = (g.ch - 1) * g.sh - 2 * g.ph + g.dh * (g.kh - 1) + o.output_padding[0] + 1;
  g.iw = (g.cw - 1) * g.sw - 2 * g.pw + g.dw * (g.kw - 1) + o.output_padding[1] + 1;
  if (g.kh < 1 || g.kw < 1 || g.ih < 1 || g.iw < 1)
    fail("{}: input {} with kernel {}x{}, stride ({}, {}) and padding ({}, {}) gives an empty output {}x{}", op,
         x.shape_string(), g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.ih, g.iw);
  choose_layout(g);

  const Tensor cx = contiguous_data(x), cw = contiguous_data(weight);
  Tensor y = image_forward(g, cx, cw, x.dtype());
  if (bias.defined() && y.numel() > 0) add_channel_bias(y, contiguous_data(bias));
  if (!needs_grad({&x, &weight, &bias})) return y;
  const bool gx = x.requires_grad(), gw = weight.requires_grad(), gb = bias.defined() && bias.requires_grad();
  return record(y, op, {x, weight, bias}, [op, g, cx, cw, gx, gw, gb](const Tensor& grad) {
    const Tensor cg = contiguous_data(grad);
    std::vector<Tensor> grads = conv_gradients(g, true, cg, cx, cw, gx, gw);
    grads.push_back(gb ? bias_gradient(cg, op) : Tensor());
    return grads;
  });
}

}  // namespace tessera
