// Row reductions and softmax, f32, on kernels/vec.h (see reduce.h for the contracts). Each row
// is reduced by one thread in a fixed order, so results do not depend on the thread count.
#include "kernels/vec_math.h"

namespace tessera::kernels::TESSERA_SIMD_NS {

// Eight accumulators hide the add latency (two loads a cycle); the order is fixed by the row
// length alone.
inline float row_sum(const float* x, int64_t n) {
  F s[8] = {zero(), zero(), zero(), zero(), zero(), zero(), zero(), zero()};
  int64_t i = 0;
  for (; i + 8 * kLanes <= n; i += 8 * kLanes)
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) s[k] = s[k] + load(x + i + k * kLanes);
#pragma GCC unroll 8
  for (int k = 0; k < 7; ++k)  // fewer than 8 vectors left (constant k keeps s[] in registers)
    if (i + kLanes <= n) s[k] = s[k] + load(x + i), i += kLanes;
  if (i < n) s[7] = s[7] + load_part(x + i, n - i);
  return hsum(((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])));
}

// sum of (x - m)^2 over a row, four accumulators; lanes past the end read as m and add 0.
inline float row_sq_dev(const float* x, int64_t n, float m) {
  const F mv = set1(m);
  F s[4] = {zero(), zero(), zero(), zero()};
  int64_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes)
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {
      const F d = load(x + i + k * kLanes) - mv;
      s[k] = fma(d, d, s[k]);
    }
#pragma GCC unroll 4
  for (int k = 0; k < 3; ++k)
    if (i + kLanes <= n) {
      const F d = load(x + i) - mv;
      s[k] = fma(d, d, s[k]);
      i += kLanes;
    }
  if (i < n) {
    const F d = load_part_or(x + i, n - i, m) - mv;
    s[3] = fma(d, d, s[3]);
  }
  return hsum((s[0] + s[1]) + (s[2] + s[3]));
}

// max of a row, and whether it holds a NaN (then the caller takes the reference's answer).
inline float row_max(const float* x, int64_t n, bool& has_nan) {
  const float inf = __builtin_inff();
  F m[4] = {set1(-inf), set1(-inf), set1(-inf), set1(-inf)};  // four chains hide the latency
  M nan = no_lanes();
  int64_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes)
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {
      const F v = load(x + i + k * kLanes);
      nan = either(nan, is_nan(v));
      m[k] = max(m[k], v);
    }
  for (; i + kLanes <= n; i += kLanes) {
    const F v = load(x + i);
    nan = either(nan, is_nan(v));
    m[0] = max(m[0], v);
  }
  if (i < n) {  // lanes past the end read as -inf, which never wins
    const F v = load_part_or(x + i, n - i, -inf);
    nan = either(nan, is_nan(v));
    m[1] = max(m[1], v);
  }
  has_nan = any(nan);
  return hmax(max(max(m[0], m[1]), max(m[2], m[3])));
}

inline void sum_rows(const float* x, int64_t rows, int64_t cols, float* out) {
  for (int64_t r = 0; r < rows; ++r) out[r] = row_sum(x + r * cols, cols);
}

inline void max_rows(const float* x, int64_t rows, int64_t cols, float* out, int64_t* argmax) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * cols;
    if (cols == 0) {
      out[r] = -__builtin_inff();
      if (argmax) argmax[r] = 0;
      continue;
    }
    bool has_nan = false;
    const float best = row_max(row, cols, has_nan);
    int64_t at = 0;
    if (has_nan) {  // the first NaN wins, as in the reference
      while (row[at] == row[at]) ++at;
      out[r] = row[at];
    } else {
      while (row[at] != best) ++at;
      out[r] = best;
    }
    if (argmax) argmax[r] = at;
  }
}

inline void var_rows(const float* x, int64_t rows, int64_t cols, int64_t correction, float* var, float* mean) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * cols;
    const float m = row_sum(row, cols) / float(cols);
    const int64_t denom = cols - correction;
    var[r] = denom > 0 ? row_sq_dev(row, cols, m) / float(denom) : __builtin_nanf("");
    if (mean) mean[r] = m;
  }
}

// max over the row; a fully masked row (all -inf) gives 0 so the row stays finite.
inline float softmax_shift(const float* in, int64_t cols) {
  bool has_nan = false;
  float m = cols > 0 ? row_max(in, cols, has_nan) : 0.0f;
  if (m == -__builtin_inff()) m = 0.0f;
  return m;
}

// out = exp(in - m); returns the sum of out. after_vector() runs once per full vector (a
// RowStreamer's step(): the previous row's streaming stores, spread over this row's arithmetic).
template <class Step = void (*)()>
inline float exp_shifted(const float* in, int64_t cols, float m, float* out, Step&& after_vector = [] {}) {
  const F mv = set1(m);
  F s = zero();
  int64_t i = 0;
  for (; i + kLanes <= cols; i += kLanes) {
    const F e = exp(load(in + i) - mv);
    store(out + i, e);
    s = s + e;
    after_vector();
  }
  if (i < cols) {
    const int64_t n = cols - i;
    const F e = exp(load_part_or(in + i, n, -__builtin_inff()) - mv);  // e^-inf = 0 past the end
    store_part(out + i, e, n);
    s = s + e;
  }
  return hsum(s);
}

inline void scale_row(float* y, int64_t cols, float a, float b) {  // y = y*a + b
  const F av = set1(a), bv = set1(b);
  map1(y, y, cols, [&](F v) { return fma(v, av, bv); });
}

// Per-thread scratch for the streaming paths, kept between calls: two rows for softmax and
// cross-entropy (one row's exponentials stay in L1/L2 while the previous row is streamed out of
// the other), one block for the AVX2 transpose.
inline float* row_scratch(int64_t floats) {
  thread_local std::vector<float> buffer;
  if (int64_t(buffer.size()) < floats) buffer.resize(size_t(floats));
  return buffer.data();
}

// fma(src[c], scale, 0): scale_row's arithmetic, for a RowStreamer.
struct ScaledRow {
  const float* src;
  F scale;
  __attribute__((always_inline)) F operator()(int64_t c, int64_t n) const {
    return fma(load_n(src + c, n), scale, zero());
  }
};

// Three passes over each row (max, exponentials and their sum, scale); the last two stay in L1.
// With streaming stores (stream_row_output) the exponentials go to scratch and the scaled row is
// written to y once, by whole lines, during the next row's exponentials: the same operations in
// the same order, so the same bits.
inline void softmax_rows(const float* x, int64_t rows, int64_t cols, float* y) {
  if (!(kRowKernelsStream && stream_row_output)) {
    for (int64_t r = 0; r < rows; ++r) {
      const float* in = x + r * cols;
      float* out = y + r * cols;
      const float s = exp_shifted(in, cols, softmax_shift(in, cols), out);
      scale_row(out, cols, 1.0f / s, 0.0f);
    }
    return;
  }
  float* scratch = row_scratch(2 * cols);
  RowStreamer<ScaledRow> pending;  // the previous row
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = x + r * cols;
    float* exps = scratch + (r % 2) * cols;
    const float s = exp_shifted(in, cols, softmax_shift(in, cols), exps, [&] { pending.step(); });
    pending.finish();
    pending = RowStreamer<ScaledRow>(y + r * cols, cols, ScaledRow{exps, set1(1.0f / s)});
  }
  pending.finish();
  stream_fence();
}

// sum_c exp(in[c] - m), nothing stored; the same sum, in the same order, as exp_shifted's.
inline float exp_sum(const float* in, int64_t cols, float m) {
  const F mv = set1(m);
  F s = zero();
  int64_t c = 0;
  for (; c + kLanes <= cols; c += kLanes) s = s + exp(load(in + c) - mv);
  if (c < cols) s = s + exp(load_part_or(in + c, cols - c, -__builtin_inff()) - mv);
  return hsum(s);
}

inline void log_softmax_rows(const float* x, int64_t rows, int64_t cols, float* y) {
  const bool streaming = kRowKernelsStream && stream_row_output;
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = x + r * cols;
    const float m = softmax_shift(in, cols);
    const F l = set1(m + __builtin_logf(exp_sum(in, cols, m)));
    store_row(y + r * cols, cols, streaming, [&](int64_t c, int64_t n) __attribute__((always_inline)) {
      return load_n(in + c, n) - l;
    });
  }
  if (streaming) stream_fence();
}

inline float row_dot(const float* a, const float* b, int64_t n) {
  F s0 = zero(), s1 = zero();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) s0 = fma(load(a + i), load(b + i), s0);
  if (i < n) s1 = load_part(a + i, n - i) * load_part(b + i, n - i);  // masked lanes are 0 * 0
  return hsum(s0 + s1);
}

inline void softmax_backward_rows(const float* y, const float* gy, int64_t rows, int64_t cols, float* gx) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* yr = y + r * cols;
    const float* gr = gy + r * cols;
    const F dot = set1(row_dot(yr, gr, cols));
    map3(yr, gr, gr, gx + r * cols, cols, [&](F v, F g, F) { return v * (g - dot); });
  }
}

inline void log_softmax_backward_rows(const float* y, const float* gy, int64_t rows, int64_t cols, float* gx) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* yr = y + r * cols;
    const float* gr = gy + r * cols;
    const F s = set1(row_sum(gr, cols));
    map3(yr, gr, gr, gx + r * cols, cols, [&](F v, F g, F) { return fnma(exp(v), s, g); });
  }
}

}  // namespace tessera::kernels::TESSERA_SIMD_NS
