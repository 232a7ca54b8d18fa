#pragma once
// Scalar reference of the fused cross-entropy (see cross_entropy.h); targets are validated by
// the caller (cross_entropy.cpp).
#include <cmath>
#include <cstdint>
#include <limits>

namespace tessera::kernels::ref {

template <class T>
void cross_entropy(const T* logits, const int64_t* targets, int64_t rows, int64_t cols, T grad_scale, T* loss,
                   T* dlogits) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* in = logits + r * cols;
    const int64_t t = targets[r];
    if (t < 0) {
      loss[r] = 0;
      if (dlogits)
        for (int64_t c = 0; c < cols; ++c) dlogits[r * cols + c] = 0;
      continue;
    }
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t c = 0; c < cols; ++c) m = in[c] > m ? in[c] : m;
    if (m == -std::numeric_limits<T>::infinity()) m = 0;
    T s = 0;
    for (int64_t c = 0; c < cols; ++c) s += std::exp(in[c] - m);
    const T target_logit = in[t];
    loss[r] = m + std::log(s) - target_logit;
    if (dlogits) {
      const T inv = grad_scale / s;
      for (int64_t c = 0; c < cols; ++c) dlogits[r * cols + c] = std::exp(in[c] - m) * inv;
      dlogits[r * cols + t] -= grad_scale;
    }
  }
}

}  // namespace tessera::kernels::ref
