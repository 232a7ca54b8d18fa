// LayerNorm over the last axis with a fused backward (autograd/transformer.h).
// The row loops are plain C++ for now; they are candidates for kernels/layer_norm.h once a SIMD
// version lands there (the op would then call it instead of the loops below).
#include <cmath>
#include <vector>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/transformer.h"
#include "kernels/threads.h"

namespace tessera {
namespace {

// Rows per parallel chunk. Fixed, so per-chunk partial sums (and thus dgamma/dbeta) do not
// depend on the thread count.
constexpr int64_t kRowGrain = 64;

template <class Fn>
void dispatch_float(DType t, Fn&& fn) {
  if (t == DType::f32) fn(float{});
  else if (t == DType::f64) fn(double{});
  else fail("layer_norm: expects a floating-point tensor, got {}", dtype_name(t));
}

// Statistics accumulate in double whatever T is: a row is short, and this keeps f32 results
// within rounding of PyTorch's.
template <class T>
void forward_rows(const T* x, const T* w, const T* b, int64_t rows, int64_t cols, double eps, T* y, T* mean,
                  T* rstd) {
  kernels::parallel_for(rows, kRowGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * cols;
      T* yr = y + r * cols;
      double s = 0;
      for (int64_t c = 0; c < cols; ++c) s += xr[c];
      const double mu = s / double(cols);
      double ss = 0;
      for (int64_t c = 0; c < cols; ++c) ss += (xr[c] - mu) * (xr[c] - mu);
      const double inv = 1.0 / std::sqrt(ss / double(cols) + eps);
      const T m = T(mu), is = T(inv);
      for (int64_t c = 0; c < cols; ++c) {
        T v = (xr[c] - m) * is;
        if (w) v *= w[c];
        if (b) v += b[c];
        yr[c] = v;
      }
      mean[r] = m;
      rstd[r] = is;
    }
  });
}

// dx = rstd * (g*w - mean(g*w) - xhat * mean(g*w*xhat)); dgamma = sum_rows g*xhat; dbeta = sum_rows g.
// Per-chunk partials of dgamma/dbeta are added in chunk order at the end.
template <class T>
void backward_rows(const T* x, const T* w, const T* g, const T* mean, const T* rstd, int64_t rows, int64_t cols,
                   T* dx, T* dw, T* db) {
  const int64_t chunks = (rows + kRowGrain - 1) / kRowGrain;
  std::vector<double> part_w(dw ? size_t(chunks * cols) : 0), part_b(db ? size_t(chunks * cols) : 0);
  kernels::parallel_for(rows, kRowGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t chunk = r0 / kRowGrain; chunk * kRowGrain < r1; ++chunk) {
      const int64_t begin = std::max(r0, chunk * kRowGrain), end = std::min(r1, (chunk + 1) * kRowGrain);
      double* pw = dw ? part_w.data() + chunk * cols : nullptr;
      double* pb = db ? part_b.data() + chunk * cols : nullptr;
      for (int64_t r = begin; r < end; ++r) {
        const T* xr = x + r * cols;
        const T* gr = g + r * cols;
        const T m = mean[r], is = rstd[r];
        double a = 0, bsum = 0;
        for (int64_t c = 0; c < cols; ++c) {
          const T xhat = (xr[c] - m) * is;
          const T gw = w ? gr[c] * w[c] : gr[c];
          a += gw;
          bsum += gw * xhat;
          if (pw) pw[c] += gr[c] * xhat;
          if (pb) pb[c] += gr[c];
        }
        if (dx) {
          const T ma = T(a / double(cols)), mb = T(bsum / double(cols));
          T* dr = dx + r * cols;
          for (int64_t c = 0; c < cols; ++c) {
            const T xhat = (xr[c] - m) * is;
            const T gw = w ? gr[c] * w[c] : gr[c];
            dr[c] = is * (gw - ma - xhat * mb);
          }
        }
      }
    }
  });
  for (int64_t c = 0; c < cols; ++c) {
    double sw = 0, sb = 0;
    for (int64_t k = 0; k < chunks; ++k) {
      if (dw) sw += part_w[k * cols + c];
      if (db) sb += part_b[k * cols + c];
    }
    if (dw) dw[c] = T(sw);
    if (db) db[c] = T(sb);
  }
}

void check_affine(const Tensor& x, const Tensor& p, const char* what) {
  if (!p.defined()) return;
  if (p.dim() != 1 || p.size(0) != x.size(-1))
    fail("layer_norm: {} has shape {}, expected [{}] for input {}", what, p.shape_string(), x.size(-1),
         x.shape_string());
  if (p.dtype() != x.dtype())
    fail("layer_norm: {} is {} but the input is {}", what, dtype_name(p.dtype()), dtype_name(x.dtype()));
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  if (x.dim() < 1) fail("layer_norm: needs an input with at least one dim, got a scalar");
  if (x.size(-1) == 0) fail("layer_norm: the normalised (last) dim of {} is empty", x.shape_string());
  if (!(eps > 0)) fail("layer_norm: eps must be positive, got {}", eps);
  check_affine(x, weight, "weight");
  check_affine(x, bias, "bias");
  const int64_t cols = x.size(-1), rows = x.numel() / cols;
  const Tensor xc = x.detach().contiguous();
  const Tensor wc = weight.defined() ? weight.detach().contiguous() : Tensor();
  const Tensor bc = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  Tensor mean = Tensor::empty({rows}, x.dtype()), rstd = Tensor::empty({rows}, x.dtype());
  dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    forward_rows<T>(xc.data<T>(), wc.defined() ? wc.data<T>() : nullptr, bc.defined() ? bc.data<T>() : nullptr,
                    rows, cols, eps, y.data<T>(), mean.data<T>(), rstd.data<T>());
  });
  if (!needs_grad({&x, &weight, &bias})) return y;
  const bool gx = x.requires_grad(), gw = weight.defined() && weight.requires_grad(),
             gb = bias.defined() && bias.requires_grad();
  const Shape x_shape = x.shape();
  return record(y, "layer_norm", {x, weight, bias},
                [xc, wc, mean, rstd, rows, cols, gx, gw, gb, x_shape](const Tensor& g) {
                  const Tensor gc = g.contiguous();
                  Tensor dx = gx ? Tensor::empty(x_shape, g.dtype()) : Tensor();
                  Tensor dw = gw ? Tensor::empty({cols}, g.dtype()) : Tensor();
                  Tensor db = gb ? Tensor::empty({cols}, g.dtype()) : Tensor();
                  dispatch_float(g.dtype(), [&](auto tag) {
                    using T = decltype(tag);
                    backward_rows<T>(xc.data<T>(), wc.defined() ? wc.data<T>() : nullptr, gc.data<T>(),
                                     mean.data<T>(), rstd.data<T>(), rows, cols, gx ? dx.data<T>() : nullptr,
                                     gw ? dw.data<T>() : nullptr, gb ? db.data<T>() : nullptr);
                  });
                  return std::vector<Tensor>{dx, dw, db};
                });
}

}  // namespace tessera
