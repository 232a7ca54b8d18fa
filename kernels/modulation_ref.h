#pragma once
// Scalar reference of the per-sample modulation kernels (see modulation.h): LayerNorm's
// reference once per sample, and the gated add written out.
#include <cstdint>

#include "kernels/layer_norm_ref.h"

namespace tessera::kernels::ref {

template <class T>
void modulated_layer_norm_forward(const T* x, const T* gamma, const T* beta, int64_t samples, int64_t tokens,
                                  int64_t cols, T eps, T* y, T* mean, T* rstd) {
  for (int64_t i = 0; i < samples; ++i) {
    const int64_t o = i * tokens * cols;
    layer_norm_forward(x + o, gamma + i * cols, beta + i * cols, tokens, cols, eps, y + o, mean + i * tokens,
                       rstd + i * tokens);
  }
}

template <class T>
void modulated_layer_norm_backward(const T* x, const T* gamma, const T* mean, const T* rstd, const T* dy,
                                   int64_t samples, int64_t tokens, int64_t cols, T* dx, T* dgamma, T* dbeta) {
  for (int64_t i = 0; i < samples; ++i) {
    const int64_t o = i * tokens * cols;
    layer_norm_backward(x + o, gamma + i * cols, mean + i * tokens, rstd + i * tokens, dy + o, tokens, cols, dx + o,
                        dgamma ? dgamma + i * cols : nullptr, dbeta ? dbeta + i * cols : nullptr);
  }
}

template <class T>
void gated_add_forward(const T* x, const T* a, const T* gate, int64_t samples, int64_t tokens, int64_t cols, T* y) {
  for (int64_t i = 0; i < samples; ++i)
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t c = 0; c < cols; ++c) {
        const int64_t k = (i * tokens + t) * cols + c;
        y[k] = x[k] + a[k] * gate[i * cols + c];
      }
}

template <class T>
void gated_add_backward(const T* a, const T* gate, const T* dy, int64_t samples, int64_t tokens, int64_t cols, T* da,
                        T* dgate) {
  for (int64_t i = 0; i < samples; ++i) {
    if (dgate)
      for (int64_t c = 0; c < cols; ++c) dgate[i * cols + c] = 0;
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t c = 0; c < cols; ++c) {
        const int64_t k = (i * tokens + t) * cols + c;
        if (da) da[k] = dy[k] * gate[i * cols + c];
        if (dgate) dgate[i * cols + c] += dy[k] * a[k];
      }
  }
}

}  // namespace tessera::kernels::ref
