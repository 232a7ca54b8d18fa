#pragma once
// Scalar references of the row reductions and softmax (see reduce.h).
#include <cmath>
#include <cstdint>
#include <limits>

namespace tessera::kernels::ref {

// Blocked sum: 8 lanes accumulate separately, which keeps float error low. The vector versions
// use their own fixed order (4 vectors of lanes), so they agree with this to rounding, not bits.
template <class T>
T sum(const T* x, int64_t n) {
  T lanes[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) lanes[l] += x[i + l];
  T total = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
  for (; i < n; ++i) total += x[i];
  return total;
}

template <class T>
void sum_rows(const T* x, int64_t rows, int64_t cols, T* out) {
  for (int64_t r = 0; r < rows; ++r) out[r] = sum(x + r * cols, cols);
}

template <class T>
void max_rows(const T* x, int64_t rows, int64_t cols, T* out, int64_t* argmax) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = x + r * cols;
    T best = -std::numeric_limits<T>::infinity();
    int64_t at = 0;
    for (int64_t c = 0; c < cols; ++c)
      if (row[c] > best || (c == 0) || std::isnan(row[c])) {
        if (std::isnan(best)) break;
        best = row[c];
        at = c;
      }
    out[r] = best;
    if (argmax) argmax[r] = at;
  }
}

template <class T>
void var_rows(const T* x, int64_t rows, int64_t cols, int64_t correction, T* var, T* mean) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = x + r * cols;
    const T m = sum(row, cols) / T(cols);
    T ss = 0;
    for (int64_t c = 0; c < cols; ++c) ss += (row[c] - m) * (row[c] - m);
    const int64_t denom = cols - correction;
    var[r] = denom > 0 ? ss / T(denom) : std::numeric_limits<T>::quiet_NaN();
    if (mean) mean[r] = m;
  }
}

template <class T>
void softmax_rows(const T* x, int64_t rows, int64_t cols, T* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* in = x + r * cols;
    T* out = y + r * cols;
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t c = 0; c < cols; ++c) m = in[c] > m ? in[c] : m;
    if (m == -std::numeric_limits<T>::infinity()) m = 0;  // a fully masked row stays finite
    T s = 0;
    for (int64_t c = 0; c < cols; ++c) s += (out[c] = std::exp(in[c] - m));
    const T inv = T(1) / s;
    for (int64_t c = 0; c < cols; ++c) out[c] *= inv;
  }
}

template <class T>
void log_softmax_rows(const T* x, int64_t rows, int64_t cols, T* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* in = x + r * cols;
    T* out = y + r * cols;
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t c = 0; c < cols; ++c) m = in[c] > m ? in[c] : m;
    if (m == -std::numeric_limits<T>::infinity()) m = 0;
    T s = 0;
    for (int64_t c = 0; c < cols; ++c) s += std::exp(in[c] - m);
    const T lse = m + std::log(s);
    for (int64_t c = 0; c < cols; ++c) out[c] = in[c] - lse;
  }
}

template <class T>
void softmax_backward_rows(const T* y, const T* gy, int64_t rows, int64_t cols, T* gx) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* yr = y + r * cols;
    const T* gr = gy + r * cols;
    T dot = 0;
    for (int64_t c = 0; c < cols; ++c) dot += yr[c] * gr[c];
    for (int64_t c = 0; c < cols; ++c) gx[r * cols + c] = yr[c] * (gr[c] - dot);
  }
}

template <class T>
void log_softmax_backward_rows(const T* y, const T* gy, int64_t rows, int64_t cols, T* gx) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* yr = y + r * cols;
    const T* gr = gy + r * cols;
    const T s = sum(gr, cols);
    for (int64_t c = 0; c < cols; ++c) gx[r * cols + c] = gr[c] - std::exp(yr[c]) * s;
  }
}

}  // namespace tessera::kernels::ref
