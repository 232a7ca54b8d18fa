// group_norm: one pass per (sample, group) block for the statistics, one for the output; the
// backward needs only per-channel sums of g and g x from which every term follows:
//   dx = rstd w_c g - rstd a - rstd^2 b (x - mean),  a = mean(w_c g),  b = mean(w_c g xhat)
//   dw_c = sum (g xhat),  db_c = sum g.
// The statistics and the affine passes run on the SIMD kernels (var_rows, scale, axpy); the
// backward's sums are kept in double, so f32 gradients do not drift with the block size.
#include <cmath>
#include <memory>
#include <vector>

#include "autograd/error.h"
#include "autograd/ops/group_norm.h"
#include "autograd/ops.h"
#include "autograd/ops/strided.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"
#include "kernels/threads.h"

namespace tessera {
namespace {

using detail::contiguous_data;

struct Layout {
  int64_t n = 0, c = 0, groups = 1, positions = 1;  // x viewed as [n, c, positions]
  int64_t group_channels() const { return c / groups; }
  int64_t block() const { return group_channels() * positions; }  // elements of one (sample, group)
};

struct Stats {
  std::vector<double> mean, rstd;  // per (sample, group)
};

template <class Fn>
void for_blocks(const Layout& l, Fn&& fn) {
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(1, l.block()));
  kernels::parallel_for(l.n * l.groups, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) fn(i / l.groups, i % l.groups);
  });
}

template <class T>
void forward(const Layout& l, const T* x, const T* w, const T* b, double eps, T* y, Stats& st) {
  for_blocks(l, [&](int64_t n, int64_t g) {
    const int64_t base = (n * l.c + g * l.group_channels()) * l.positions, m = l.block();
    T var = 0, mean = 0;
    if (m) kernels::var_rows(x + base, 1, m, 0, &var, &mean);
    const double rstd = 1.0 / std::sqrt(double(var) + eps);
    st.mean[n * l.groups + g] = double(mean);
    st.rstd[n * l.groups + g] = rstd;
    for (int64_t k = 0; k < l.group_channels(); ++k) {
      const int64_t c = g * l.group_channels() + k;
      const double scale = (w ? double(w[c]) : 1.0) * rstd;
      const double shift = (b ? double(b[c]) : 0.0) - double(mean) * scale;
      kernels::unary(kernels::UnaryOp::scale, x + base + k * l.positions, y + base + k * l.positions, l.positions,
                     T(scale), T(shift));
    }
  });
}

// sum of g and of g x over a run, in double with four independent accumulators each.
template <class T>
void sums(const T* g, const T* x, int64_t n, double* sum_g, double* sum_gx) {
  double sg[4] = {0, 0, 0, 0}, sgx[4] = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int k = 0; k < 4; ++k) {
      sg[k] += double(g[i + k]);
      sgx[k] += double(g[i + k]) * double(x[i + k]);
    }
  for (; i < n; ++i) sg[0] += double(g[i]), sgx[0] += double(g[i]) * double(x[i]);
  *sum_g = (sg[0] + sg[1]) + (sg[2] + sg[3]);
  *sum_gx = (sgx[0] + sgx[1]) + (sgx[2] + sgx[3]);
}

// gx (when wanted) and per-(sample, channel) sums of g and g xhat for the parameter gradients.
template <class T>
void backward(const Layout& l, const T* x, const T* w, const T* gy, const Stats& st, T* gx, double* sum_g,
              double* sum_gxhat) {
  for_blocks(l, [&](int64_t n, int64_t g) {
    const int64_t gc = l.group_channels();
    const double mean = st.mean[n * l.groups + g], rstd = st.rstd[n * l.groups + g];
    double a = 0, b = 0;  // sums of w g and w g xhat over the block
    for (int64_t k = 0; k < gc; ++k) {
      const int64_t c = g * gc + k;
      const T* px = x + (n * l.c + c) * l.positions;
      const T* pg = gy + (n * l.c + c) * l.positions;
      double sg, sgx;
      sums(pg, px, l.positions, &sg, &sgx);
      const double sgxhat = (sgx - mean * sg) * rstd;
      sum_g[n * l.c + c] = sg;
      sum_gxhat[n * l.c + c] = sgxhat;
      const double wc = w ? double(w[c]) : 1.0;
      a += wc * sg;
      b += wc * sgxhat;
    }
    if (!gx) return;
    const double m = double(l.block());
    a /= m, b /= m;
    // dx = rstd w_c g + coef_x x + coef_0
    const T coef_x = T(-rstd * rstd * b), coef_0 = T(-rstd * a + rstd * rstd * b * mean);
    for (int64_t k = 0; k < gc; ++k) {
      const int64_t c = g * gc + k;
      const T scale = T(rstd * (w ? double(w[c]) : 1.0));
      const int64_t off = (n * l.c + c) * l.positions;
      kernels::unary(kernels::UnaryOp::scale, x + off, gx + off, l.positions, coef_x, coef_0);
      kernels::axpy(scale, gy + off, gx + off, l.positions);
    }
  });
}

template <class T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

}  // namespace

Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight, const Tensor& bias, double eps) {
  const char* op = "group_norm";
  if (x.dim() < 2) fail("{}: input must be [N, C, ...], got {}", op, x.shape_string());
  if (!is_floating(x.dtype())) fail("{}: input must be floating-point, got {}", op, dtype_name(x.dtype()));
  Layout l;
  l.n = x.size(0), l.c = x.size(1), l.groups = num_groups;
  for (int64_t d = 2; d < x.dim(); ++d) l.positions *= x.size(d);
  if (num_groups < 1 || l.c % num_groups)
    fail("{}: {} channels of input {} do not split into {} groups", op, l.c, x.shape_string(), num_groups);
  for (const Tensor* p : {&weight, &bias})
    if (p->defined() && (p->dim() != 1 || p->size(0) != l.c || p->dtype() != x.dtype()))
      fail("{}: weight and bias must be [{}] {} for input {}, got {} {}", op, l.c, dtype_name(x.dtype()),
           x.shape_string(), p->shape_string(), dtype_name(p->dtype()));
  if (!(eps > 0)) fail("{}: eps must be positive, got {}", op, eps);

  const Tensor cx = contiguous_data(x);
  const Tensor cw = weight.defined() ? contiguous_data(weight) : Tensor();
  const Tensor cb = bias.defined() ? contiguous_data(bias) : Tensor();
  auto stats = std::make_shared<Stats>();
  stats->mean.resize(l.n * l.groups);
  stats->rstd.resize(l.n * l.groups);
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  visit_floating(x.dtype(), "group_norm", [&](auto tag) {
    using T = decltype(tag);
    forward<T>(l, cx.data<T>(), data_or_null<T>(cw), data_or_null<T>(cb), eps, y.data<T>(), *stats);
  });
  if (!needs_grad({&x, &weight, &bias})) return y;
  const bool gx = x.requires_grad(), gw = weight.defined() && weight.requires_grad(),
             gb = bias.defined() && bias.requires_grad();
  return record(y, op, {x, weight, bias}, [l, cx, cw, stats, gx, gw, gb](const Tensor& grad) {
    const Tensor cg = contiguous_data(grad);
    Tensor dx = gx ? Tensor::empty(cx.shape(), cx.dtype()) : Tensor();
    std::vector<double> sum_g(l.n * l.c), sum_gxhat(l.n * l.c);
    Tensor dw = gw ? Tensor::empty({l.c}, cx.dtype()) : Tensor();
    Tensor db = gb ? Tensor::empty({l.c}, cx.dtype()) : Tensor();
    visit_floating(cx.dtype(), "group_norm backward", [&](auto tag) {
      using T = decltype(tag);
      backward<T>(l, cx.data<T>(), data_or_null<T>(cw), cg.data<T>(), *stats, gx ? dx.data<T>() : nullptr,
                  sum_g.data(), sum_gxhat.data());
      for (int64_t c = 0; c < l.c; ++c) {
        double sw = 0, sb = 0;
        for (int64_t n = 0; n < l.n; ++n) sw += sum_gxhat[n * l.c + c], sb += sum_g[n * l.c + c];
        if (gw) dw.data<T>()[c] = T(sw);
        if (gb) db.data<T>()[c] = T(sb);
      }
    });
    return std::vector<Tensor>{dx, dw, db};
  });
}

}  // namespace tessera
