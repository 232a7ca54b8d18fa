#pragma once
// Scalar reference of LayerNorm (see layer_norm.h).
#include <cmath>
#include <cstdint>

#include "kernels/reduce_ref.h"

namespace tessera::kernels::ref {

template <class T>
void layer_norm_forward(const T* x, const T* gamma, const T* beta, int64_t rows, int64_t cols, T eps, T* y, T* mean,
                        T* rstd) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = x + r * cols;
    const T m = sum(row, cols) / T(cols);
    T ss = 0;
    for (int64_t c = 0; c < cols; ++c) ss += (row[c] - m) * (row[c] - m);
    const T rs = T(1) / std::sqrt(ss / T(cols) + eps);
    for (int64_t c = 0; c < cols; ++c)
      y[r * cols + c] = (row[c] - m) * rs * (gamma ? gamma[c] : T(1)) + (beta ? beta[c] : T(0));
    mean[r] = m;
    rstd[r] = rs;
  }
}

template <class T>
void add_layer_norm_forward(const T* x, const T* residual, const T* gamma, const T* beta, int64_t rows, int64_t cols,
                            T eps, T* sum_out, T* y, T* mean, T* rstd) {
  for (int64_t i = 0; i < rows * cols; ++i) sum_out[i] = x[i] + residual[i];
  layer_norm_forward(sum_out, gamma, beta, rows, cols, eps, y, mean, rstd);
}

template <class T>
void layer_norm_backward(const T* x, const T* gamma, const T* mean, const T* rstd, const T* dy, int64_t rows,
                         int64_t cols, T* dx, T* dgamma, T* dbeta) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    const T* gr = dy + r * cols;
    T a = 0, b = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const T g = gr[c] * (gamma ? gamma[c] : T(1));
      a += g;
      b += g * (xr[c] - mean[r]) * rstd[r];
    }
    a /= T(cols);
    b /= T(cols);
    for (int64_t c = 0; c < cols; ++c) {
      const T g = gr[c] * (gamma ? gamma[c] : T(1));
      const T xhat = (xr[c] - mean[r]) * rstd[r];
      dx[r * cols + c] = rstd[r] * (g - a - xhat * b);
    }
  }
  if (dgamma)
    for (int64_t c = 0; c < cols; ++c) dgamma[c] = 0;
  if (dbeta)
    for (int64_t c = 0; c < cols; ++c) dbeta[c] = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const T d = dy[r * cols + c];
      if (dgamma) dgamma[c] += d * (x[r * cols + c] - mean[r]) * rstd[r];
      if (dbeta) dbeta[c] += d;
    }
}

}  // namespace tessera::kernels::ref
