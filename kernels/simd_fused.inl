// Fused f32 kernels on kernels/vec.h: bias + activation, the gated add, LayerNorm (with residual), cross-entropy
// with log-softmax, AdamW. Row kernels take a block of whole rows; column sums take a block of
// columns and run down the rows in order (so they do not depend on how work is split).
#include "kernels/vec_math.h"

namespace tessera::kernels::TESSERA_SIMD_NS {

// The activation's elementwise op in its declared vector form (elementwise_ops.def); its
// derivative is the declared backward with an output gradient of 1.
template <Activation act>
inline F activate(F v) {
  if constexpr (act == Activation::identity) return v;
  else return vector_form<activation_op(act)>(v);
}

template <Activation act>
inline F activate_grad(F v) {
  if constexpr (act == Activation::identity) return set1(1.0f);
  else return vector_backward_form<activation_op(act)>(v, vector_form<activation_op(act)>(v), set1(1.0f));
}

// Loads bias[c..] or zeros when there is no bias.
inline F load_opt(const float* p, int64_t c, int64_t n, float fallback) {
  if (p == nullptr) return set1(fallback);
  return load_n(p + c, n);
}

template <Activation act>
inline void bias_act_forward_t(const float* x, const float* bias, int64_t rows, int64_t cols, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    int64_t c = 0;
    for (; c + kLanes <= cols; c += kLanes) store(yr + c, activate<act>(load(xr + c) + load_opt(bias, c, kLanes, 0)));
    if (c < cols) store_part(yr + c, activate<act>(load_part(xr + c, cols - c) + load_opt(bias, c, cols - c, 0)), cols - c);
  }
}

inline void bias_act_forward(Activation act, const float* x, const float* bias, int64_t rows, int64_t cols, float* y) {
  switch (act) {  // one instantiation per activation keeps the switch out of the inner loop
    case Activation::identity: return bias_act_forward_t<Activation::identity>(x, bias, rows, cols, y);
#define TESSERA_BIAS_ACT_FORWARD(id) \
  case Activation::id: return bias_act_forward_t<Activation::id>(x, bias, rows, cols, y);
    TESSERA_ACTIVATIONS(TESSERA_BIAS_ACT_FORWARD)
#undef TESSERA_BIAS_ACT_FORWARD
  }
}

// dx rows; when dbias is not null it is overwritten with this block's column sums of dx (row
// order). Full vectors use plain loads and stores (by_vectors): the masked ones that every
// vector used before ran ~2.5x slower on arrays out of cache (Zen 5).
template <Activation act>
inline void bias_act_backward_t(const float* x, const float* bias, const float* dy, int64_t rows, int64_t cols,
                                float* dx, float* dbias) {
  if (dbias) map1(dbias, dbias, cols, [](F) { return zero(); });
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t o = r * cols;
    by_vectors(cols, [&](int64_t c, int64_t n) __attribute__((always_inline)) {
      const F d = load_n(dy + o + c, n) * activate_grad<act>(load_n(x + o + c, n) + load_opt(bias, c, n, 0));
      store_n(dx + o + c, d, n);
      if (dbias) store_n(dbias + c, d + load_n(dbias + c, n), n);
    });
  }
}

inline void bias_act_backward(Activation act, const float* x, const float* bias, const float* dy, int64_t rows,
                              int64_t cols, float* dx, float* dbias) {
  switch (act) {
    case Activation::identity: return bias_act_backward_t<Activation::identity>(x, bias, dy, rows, cols, dx, dbias);
#define TESSERA_BIAS_ACT_BACKWARD(id) \
  case Activation::id: return bias_act_backward_t<Activation::id>(x, bias, dy, rows, cols, dx, dbias);
    TESSERA_ACTIVATIONS(TESSERA_BIAS_ACT_BACKWARD)
#undef TESSERA_BIAS_ACT_BACKWARD
  }
}

// out[c] = sum_r x[r*ld + c] for c in [0, cols), in row order.
inline void column_sums(const float* x, int64_t rows, int64_t cols, int64_t ld, float* out) {
  by_vectors(cols, [&](int64_t c, int64_t n) __attribute__((always_inline)) {
    F s = zero();
    for (int64_t r = 0; r < rows; ++r) s = s + load_n(x + r * ld + c, n);
    store_n(out + c, s, n);
  });
}

// Rows of y = x + a * gate, one gate value per column for all the rows (a sample's gate in a
// DiT block; modulation.h).
inline void gated_add_forward(const float* x, const float* a, const float* gate, int64_t rows, int64_t cols,
                              float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t o = r * cols;
    by_vectors(cols, [&](int64_t c, int64_t n) __attribute__((always_inline)) {
      store_n(y + o + c, fma(load_n(a + o + c, n), load_n(gate + c, n), load_n(x + o + c, n)), n);
    });
  }
}

// da = dy * gate (when not null); dgate, when not null, is overwritten with the column sums of
// dy * a over the rows, in row order.
inline void gated_add_backward(const float* a, const float* gate, const float* dy, int64_t rows, int64_t cols,
                               float* da, float* dgate) {
  if (dgate) map1(dgate, dgate, cols, [](F) { return zero(); });
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t o = r * cols;
    by_vectors(cols, [&](int64_t c, int64_t n) __attribute__((always_inline)) {
      const F d = load_n(dy + o + c, n);
      if (da) store_n(da + o + c, d * load_n(gate + c, n), n);
      if (dgate) store_n(dgate + c, fma(d, load_n(a + o + c, n), load_n(dgate + c, n)), n);
    });
  }
}

// Rows of LayerNorm forward; with residual, src = x + residual is written to sum first. With
// stream_row_output, y is written by streaming stores (sum is not: it is read back at once).
inline void layer_norm_forward(const float* x, const float* residual, const float* gamma, const float* beta,
                               int64_t rows, int64_t cols, float eps, float* sum, float* y, float* mean, float* rstd) {
  const bool streaming = kRowKernelsStream && stream_row_output;
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = x + r * cols;
    if (residual) {
      binary_strided(src, 1, residual + r * cols, 1, sum + r * cols, cols, [](F a, F b) { return a + b; });
      src = sum + r * cols;
    }
    const float m = row_sum(src, cols) / float(cols);
    const F mv = set1(m);
    const float rs = 1.0f / __builtin_sqrtf(row_sq_dev(src, cols, m) / float(cols) + eps);
    const F rv = set1(rs);
    store_row(y + r * cols, cols, streaming, [&](int64_t i, int64_t n) __attribute__((always_inline)) {
      const F xhat = (load_n(src + i, n) - mv) * rv;
      return fma(xhat, load_opt(gamma, i, n, 1.0f), load_opt(beta, i, n, 0.0f));
    });
    mean[r] = m;
    rstd[r] = rs;
  }
  if (streaming) stream_fence();
}

// dx rows of the LayerNorm backward, two passes over each row (in L1 for the second). When
// dgamma/dbeta are not null they are overwritten with this block's column sums of dy*xhat and
// dy, taken in the second pass (row order).
inline void layer_norm_backward(const float* x, const float* gamma, const float* mean, const float* rstd,
                                const float* dy, int64_t rows, int64_t cols, float* dx, float* dgamma, float* dbeta) {
  if (dgamma) map1(dgamma, dgamma, cols, [](F) { return zero(); });
  if (dbeta) map1(dbeta, dbeta, cols, [](F) { return zero(); });
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    const float* gr = dy + r * cols;
    const F mv = set1(mean[r]), rv = set1(rstd[r]);
    F a = zero(), b = zero();
    by_vectors(cols, [&](int64_t c, int64_t n) __attribute__((always_inline)) {  // masked lanes load 0: add nothing
      const F g = load_n(gr + c, n) * load_opt(gamma, c, n, 1.0f);
      const F xhat = (load_n(xr + c, n) - mv) * rv;
      a = a + g;
      b = fma(g, xhat, b);
    });
    const F am = set1(hsum(a) / float(cols)), bm = set1(hsum(b) / float(cols));
    by_vectors(cols, [&](int64_t c, int64_t n) __attribute__((always_inline)) {
      const F d = load_n(gr + c, n);
      const F g = d * load_opt(gamma, c, n, 1.0f);
      const F xhat = (load_n(xr + c, n) - mv) * rv;
      store_n(dx + r * cols + c, rv * fnma(xhat, bm, g - am), n);
      if (dgamma) store_n(dgamma + c, fma(d, xhat, load_n(dgamma + c, n)), n);
      if (dbeta) store_n(dbeta + c, d + load_n(dbeta + c, n), n);
    });
  }
}

// grad_scale * softmax, minus grad_scale at the target: the normal path's arithmetic (scale_row,
// then out[t] -= grad_scale), for a RowStreamer; other lanes subtract 0, which changes nothing.
struct CrossEntropyGradRow {
  const float* exps;
  F scale;
  int64_t target;
  float grad_scale;
  __attribute__((always_inline)) F operator()(int64_t c, int64_t n) const {
    const F d = fma(load_n(exps + c, n), scale, zero());
    return uint64_t(target - c) < uint64_t(n) ? d - lane_only(target - c, grad_scale) : d;
  }
};

// Rows of the fused cross-entropy; targets were validated by the caller. With stream_row_output,
// the exponentials go to scratch and dlogits is written once, by whole lines, during the next
// row's exponentials (as softmax_rows does).
inline void cross_entropy(const float* logits, const int64_t* targets, int64_t rows, int64_t cols, float grad_scale,
                          float* loss, float* dlogits) {
  const bool streaming = kRowKernelsStream && dlogits != nullptr && stream_row_output;
  float* scratch = streaming ? row_scratch(2 * cols) : nullptr;
  RowStreamer<CrossEntropyGradRow> pending;  // the previous row, when streaming
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = logits + r * cols;
    const int64_t t = targets[r];
    if (t < 0) {
      loss[r] = 0;
      if (dlogits) {
        pending.finish();  // dlogits may alias logits: finish rows in order
        store_row(dlogits + r * cols, cols, streaming, [](int64_t, int64_t) { return zero(); });
      }
      continue;
    }
    const float m = softmax_shift(in, cols);
    const float target_logit = in[t];  // read first: dlogits may alias logits
    if (streaming) {
      float* exps = scratch + (r % 2) * cols;
      const float s = exp_shifted(in, cols, m, exps, [&] { pending.step(); });
      pending.finish();
      pending = RowStreamer<CrossEntropyGradRow>(dlogits + r * cols, cols,
                                                 CrossEntropyGradRow{exps, set1(grad_scale / s), t, grad_scale});
      loss[r] = m + __builtin_logf(s) - target_logit;
    } else if (dlogits) {
      float* out = dlogits + r * cols;
      const float s = exp_shifted(in, cols, m, out);
      scale_row(out, cols, grad_scale / s, 0.0f);
      out[t] -= grad_scale;
      loss[r] = m + __builtin_logf(s) - target_logit;
    } else {
      loss[r] = m + __builtin_logf(exp_sum(in, cols, m)) - target_logit;
    }
  }
  pending.finish();
  if (streaming) stream_fence();
}

inline void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamWConstants& k) {
  const F decay = set1(k.decay), b1 = set1(k.beta1), b2 = set1(k.beta2), c1 = set1(1.0f - k.beta1),
          c2 = set1(1.0f - k.beta2), step = set1(k.step_size), ibc2 = set1(k.inv_sqrt_bc2), eps = set1(k.eps);
  by_vectors(n, [&](int64_t i, int64_t w) __attribute__((always_inline)) {
    const F gi = load_n(g + i, w);
    const F mi = fma(b1, load_n(m + i, w), c1 * gi);
    const F vi = fma(b2, load_n(v + i, w), c2 * gi * gi);
    const F pi = fnma(step, mi / fma(sqrt(vi), ibc2, eps), load_n(p + i, w) * decay);
    store_n(m + i, mi, w);
    store_n(v + i, vi, w);
    store_n(p + i, pi, w);
  });
}

}  // namespace tessera::kernels::TESSERA_SIMD_NS
