// InfoNCE and SigLIP losses as fused ops (see autograd/ops/contrastive.h). Both share the front half:
// normalised rows, the cosine matrix S = an bn^T, and, in the backward, the way a gradient on S
// returns to the raw embeddings. Only the reduction of S to a loss, and its gradient dL/dS,
// differ; they are written out per loss below.
#include "autograd/ops/contrastive.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "kernels/gemm.h"

namespace tessera {
namespace {

constexpr double kNormEps = 1e-12;  // torch.nn.functional.normalize's default

void check_scalar(const Tensor& t, const Tensor& like, const char* op, const char* what) {
  if (!t.defined()) fail("{}: {} is undefined", op, what);
  if (t.numel() != 1) fail("{}: {} must hold one element, got shape {}", op, what, t.shape_string());
  if (t.dtype() != like.dtype())
    fail("{}: {} is {} but the embeddings are {}", op, what, dtype_name(t.dtype()), dtype_name(like.dtype()));
}

void check_embeddings(const Tensor& a, const Tensor& b, const Tensor& labels, const char* op) {
  if (!a.defined() || !b.defined()) fail("{}: an embedding tensor is undefined", op);
  if (a.dim() != 2 || b.dim() != 2 || a.shape() != b.shape())
    fail("{}: expects image and text embeddings of the same shape [N, D], got {} and {}", op, a.shape_string(),
         b.shape_string());
  if (a.size(0) == 0 || a.size(1) == 0) fail("{}: empty batch {}", op, a.shape_string());
  if (!is_floating(a.dtype()) || a.dtype() != b.dtype())
    fail("{}: embeddings must share one floating dtype, got {} and {}", op, dtype_name(a.dtype()),
         dtype_name(b.dtype()));
  if (labels.defined()) {
    if (labels.dim() != 1 || labels.size(0) != a.size(0))
      fail("{}: labels must be [{}], got {}", op, a.size(0), labels.shape_string());
    if (is_floating(labels.dtype())) fail("{}: labels must be integers, got {}", op, dtype_name(labels.dtype()));
  }
}

// Which pairs are positives: the diagonal, or with labels every same-class pair. Also the count
// of positives per row (equal to the count per column: the relation is symmetric).
struct Positives {
  int64_t n = 0;
  std::vector<int64_t> label;  // empty without labels
  std::vector<double> count;
  bool operator()(int64_t i, int64_t j) const { return label.empty() ? i == j : label[i] == label[j]; }
};

Positives make_positives(int64_t n, const Tensor& labels) {
  Positives p;
  p.n = n;
  p.count.assign(size_t(n), 1.0);
  if (!labels.defined()) return p;
  p.label = labels.to_vector<int64_t>();
  for (int64_t i = 0; i < n; ++i) p.count[i] = double(std::count(p.label.begin(), p.label.end(), p.label[i]));
  return p;
}

// Unit rows of x and the (clamped) norms they were divided by.
template <class T>
void normalize_rows(const T* x, int64_t n, int64_t d, T* out, T* norms) {
  for (int64_t i = 0; i < n; ++i) {
    double ss = 0;
    for (int64_t k = 0; k < d; ++k) ss += double(x[i * d + k]) * double(x[i * d + k]);
    const T norm = T(std::max(std::sqrt(ss), kNormEps));
    norms[i] = norm;
    for (int64_t k = 0; k < d; ++k) out[i * d + k] = x[i * d + k] / norm;
  }
}

// Gradient through y = x / max(|x|, eps): (gy - y (y . gy)) / |x|, or gy / eps where clamped.
template <class T>
void normalize_rows_backward(const T* y, const T* norms, const T* gy, int64_t n, int64_t d, T* gx) {
  for (int64_t i = 0; i < n; ++i) {
    const T* yi = y + i * d;
    const T* gi = gy + i * d;
    double dot = 0;
    if (norms[i] > T(kNormEps))
      for (int64_t k = 0; k < d; ++k) dot += double(yi[k]) * double(gi[k]);
    for (int64_t k = 0; k < d; ++k) gx[i * d + k] = (gi[k] - yi[k] * T(dot)) / norms[i];
  }
}

// The state both losses save for the backward: normalised rows, their norms and S.
struct Cosines {
  Tensor an, bn, na, nb, s;  // [N, D], [N, D], [N], [N], [N, N]
  int64_t n = 0, d = 0;
};

template <class T>
Cosines cosines(const Tensor& a, const Tensor& b) {
  Cosines c;
  c.n = a.size(0), c.d = a.size(1);
  const Tensor ac = a.detach().contiguous(), bc = b.detach().contiguous();
  c.an = Tensor::empty({c.n, c.d}, a.dtype());
  c.bn = Tensor::empty({c.n, c.d}, a.dtype());
  c.na = Tensor::empty({c.n}, a.dtype());
  c.nb = Tensor::empty({c.n}, a.dtype());
  c.s = Tensor::empty({c.n, c.n}, a.dtype());
  normalize_rows(ac.data<T>(), c.n, c.d, c.an.data<T>(), c.na.data<T>());
  normalize_rows(bc.data<T>(), c.n, c.d, c.bn.data<T>(), c.nb.data<T>());
  kernels::GemmShape g{false, true, c.n, c.n, c.d, c.d, c.d, c.n};
  kernels::gemm_full_precision(g, T(1), c.an.data<T>(), c.bn.data<T>(), T(0), c.s.data<T>());
  return c;
}

// Given dL/dS ([N, N], contiguous), the gradients of the raw embeddings a and b.
template <class T>
std::pair<Tensor, Tensor> cosines_backward(const Cosines& c, const Tensor& gs, bool need_a, bool need_b) {
  Tensor ga, gb;
  const int64_t n = c.n, d = c.d;
  Tensor tmp = Tensor::empty({n, d}, c.an.dtype());
  if (need_a) {  // dL/dan = gS bn
    kernels::GemmShape g{false, false, n, d, n, n, d, d};
    kernels::gemm_full_precision(g, T(1), gs.data<T>(), c.bn.data<T>(), T(0), tmp.data<T>());
    ga = Tensor::empty({n, d}, c.an.dtype());
    normalize_rows_backward(c.an.data<T>(), c.na.data<T>(), tmp.data<T>(), n, d, ga.data<T>());
  }
  if (need_b) {  // dL/dbn = gS^T an
    kernels::GemmShape g{true, false, n, d, n, n, d, d};
    kernels::gemm_full_precision(g, T(1), gs.data<T>(), c.an.data<T>(), T(0), tmp.data<T>());
    gb = Tensor::empty({n, d}, c.an.dtype());
    normalize_rows_backward(c.bn.data<T>(), c.nb.data<T>(), tmp.data<T>(), n, d, gb.data<T>());
  }
  return {ga, gb};
}

// log(1 + exp(x)) without overflow.
double softplus(double x) { return std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x))); }
double sigmoid(double x) { return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x)); }

}  // namespace

Tensor info_nce_loss(const Tensor& a, const Tensor& b, const Tensor& log_scale, const InfoNceOptions& o) {
  const char* op = "info_nce_loss";
  check_embeddings(a, b, o.labels, op);
  check_scalar(log_scale, a, op, "log_scale");
  if (!(o.max_logit_scale > 0)) fail("{}: max_logit_scale must be positive, got {}", op, o.max_logit_scale);
  const double raw_scale = std::exp(log_scale.item());
  const bool clamped = !(raw_scale <= o.max_logit_scale);
  const double scale = clamped ? o.max_logit_scale : raw_scale;
  if (!std::isfinite(scale)) fail("{}: log_scale {} is not finite", op, log_scale.item());
  const int64_t n = a.size(0);
  const Positives pos = make_positives(n, o.labels);

  return visit_floating(a.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    Cosines c = cosines<T>(a, b);
    // Log-sum-exp of every row and every column of the logits scale * S.
    auto row_lse = std::make_shared<std::vector<double>>(size_t(n));
    auto col_lse = std::make_shared<std::vector<double>>(size_t(n));
    const T* s = c.s.data<T>();
    std::vector<double> col_max(size_t(n), -INFINITY), col_sum(size_t(n), 0.0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) col_max[j] = std::max(col_max[j], scale * double(s[i * n + j]));
    // Row i's cross-entropy is lse_i - t_i with t_i its positives' mean logit; column j's is
    // the same with the column's lse. Same-class pairs have equal positive counts, so the
    // column targets sum to the row targets: loss = (sum lse_row + sum lse_col - 2 sum t) / 2N.
    double loss = 0;
    for (int64_t i = 0; i < n; ++i) {
      const T* row = s + i * n;
      double m = -INFINITY;
      for (int64_t j = 0; j < n; ++j) m = std::max(m, scale * double(row[j]));
      double sum = 0, target_logit = 0;
      for (int64_t j = 0; j < n; ++j) {
        const double l = scale * double(row[j]);
        sum += std::exp(l - m);
        col_sum[j] += std::exp(l - col_max[j]);
        if (pos(i, j)) target_logit += l;
      }
      (*row_lse)[i] = m + std::log(sum);
      loss += (*row_lse)[i] - 2 * target_logit / pos.count[i];
    }
    for (int64_t j = 0; j < n; ++j) {
      (*col_lse)[j] = col_max[j] + std::log(col_sum[j]);
      loss += (*col_lse)[j];
    }
    loss /= 2.0 * double(n);
    Tensor out = Tensor::scalar(loss, a.dtype());
    if (!needs_grad({&a, &b, &log_scale})) return out;

    const bool need_a = a.requires_grad(), need_b = b.requires_grad(), need_s = log_scale.requires_grad() && !clamped;
    const Shape scale_shape = log_scale.shape();
    return record(out, op, {a, b, log_scale},
                  [c, row_lse, col_lse, pos, scale, need_a, need_b, need_s, scale_shape](const Tensor& grad) {
                    const int64_t n = c.n;
                    const double g = grad.item();
                    // dL/dlogits = (softmax_row - targets_row + softmax_col - targets_col) / (2N)
                    Tensor gs = Tensor::empty({n, n}, c.s.dtype());
                    const T* s = c.s.data<T>();
                    T* out = gs.data<T>();
                    double gscale = 0;
                    for (int64_t i = 0; i < n; ++i)
                      for (int64_t j = 0; j < n; ++j) {
                        const double l = scale * double(s[i * n + j]);
                        double dl = std::exp(l - (*row_lse)[i]) + std::exp(l - (*col_lse)[j]);
                        if (pos(i, j)) dl -= 1.0 / pos.count[i] + 1.0 / pos.count[j];
                        dl *= g / (2.0 * double(n));
                        gscale += dl * double(s[i * n + j]);
                        out[i * n + j] = T(dl * scale);
                      }
                    auto [ga, gb] = cosines_backward<T>(c, gs, need_a, need_b);
                    Tensor gl;
                    if (need_s) gl = Tensor::full(scale_shape, gscale * scale, c.s.dtype());
                    return std::vector<Tensor>{ga, gb, gl};
                  });
  });
}

Tensor sigmoid_pairwise_loss(const Tensor& a, const Tensor& b, const Tensor& log_t, const Tensor& bias,
                             const SigmoidLossOptions& o) {
  const char* op = "sigmoid_pairwise_loss";
  check_embeddings(a, b, o.labels, op);
  check_scalar(log_t, a, op, "log_t");
  check_scalar(bias, a, op, "bias");
  const double t = std::exp(log_t.item()), beta = bias.item();
  if (!std::isfinite(t) || !std::isfinite(beta)) fail("{}: log_t {} or bias {} is not finite", op, log_t.item(), beta);
  const int64_t n = a.size(0);
  const Positives pos = make_positives(n, o.labels);

  return visit_floating(a.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    Cosines c = cosines<T>(a, b);
    const T* s = c.s.data<T>();
    double loss = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        const double z = pos(i, j) ? 1.0 : -1.0;
        loss += softplus(-z * (t * double(s[i * n + j]) + beta));  // -log sigmoid(z * logit)
      }
    Tensor out = Tensor::scalar(loss / double(n), a.dtype());
    if (!needs_grad({&a, &b, &log_t, &bias})) return out;

    const bool need_a = a.requires_grad(), need_b = b.requires_grad();
    const Shape t_shape = log_t.shape(), b_shape = bias.shape();
    return record(out, op, {a, b, log_t, bias}, [c, pos, t, beta, need_a, need_b, t_shape, b_shape](const Tensor& grad) {
      const int64_t n = c.n;
      const double g = grad.item();
      Tensor gs = Tensor::empty({n, n}, c.s.dtype());
      const T* s = c.s.data<T>();
      T* out = gs.data<T>();
      double gt = 0, gbias = 0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) {
          const double z = pos(i, j) ? 1.0 : -1.0;
          // d softplus(-z l) / dl = -z sigmoid(-z l)
          const double dl = -z * sigmoid(-z * (t * double(s[i * n + j]) + beta)) * g / double(n);
          gbias += dl;
          gt += dl * double(s[i * n + j]);
          out[i * n + j] = T(dl * t);
        }
      auto [ga, gb] = cosines_backward<T>(c, gs, need_a, need_b);
      return std::vector<Tensor>{ga, gb, Tensor::full(t_shape, gt * t, c.s.dtype()),
                                 Tensor::full(b_shape, gbias, c.s.dtype())};
    });
  });
}

Tensor l2_normalize_rows(const Tensor& x) {
  if (!x.defined() || x.dim() < 1) fail("l2_normalize_rows: expects a tensor [..., D]");
  if (!is_floating(x.dtype())) fail("l2_normalize_rows: expects a floating tensor, got {}", dtype_name(x.dtype()));
  const int64_t d = x.size(-1), n = d == 0 ? 0 : x.numel() / d;
  const Tensor xc = x.detach().contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  Tensor norms = Tensor::empty({n}, x.dtype());
  visit_floating(x.dtype(), "l2_normalize_rows", [&](auto tag) {
    using T = decltype(tag);
    normalize_rows(xc.data<T>(), n, d, y.data<T>(), norms.data<T>());
  });
  if (!needs_grad({&x})) return y;
  const Tensor saved = y.detach();
  return record(y, "l2_normalize_rows", {x}, [saved, norms, n, d](const Tensor& g) {
    const Tensor gc = g.contiguous();
    Tensor gx = Tensor::empty(saved.shape(), saved.dtype());
    visit_floating(saved.dtype(), "l2_normalize_rows backward", [&](auto tag) {
      using T = decltype(tag);
      normalize_rows_backward(saved.data<T>(), norms.data<T>(), gc.data<T>(), n, d, gx.data<T>());
    });
    return std::vector<Tensor>{gx};
  });
}

void clamp_log_scale_(Tensor& log_scale, double max_logit_scale) {
  if (log_scale.numel() != 1) fail("clamp_log_scale_: expects one element, got {}", log_scale.shape_string());
  const double v = std::clamp(log_scale.item(), 0.0, std::log(max_logit_scale));
  log_scale.fill_(v);
}

}  // namespace tessera
