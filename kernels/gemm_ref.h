#pragma once
// Scalar reference GEMM: the test oracle, and the fallback when OpenBLAS cannot be loaded.
#include <cstdint>

#include "kernels/gemm.h"

namespace tessera::kernels::ref {

template <class T>
void gemm(const GemmShape& s, T alpha, const T* a, const T* b, T beta, T* c) {
  for (int64_t i = 0; i < s.m; ++i) {
    T* row = c + i * s.ldc;
    for (int64_t j = 0; j < s.n; ++j) row[j] = beta == T(0) ? T(0) : beta * row[j];
    for (int64_t p = 0; p < s.k; ++p) {
      const T av = alpha * (s.trans_a ? a[p * s.lda + i] : a[i * s.lda + p]);
      if (s.trans_b)
        for (int64_t j = 0; j < s.n; ++j) row[j] += av * b[j * s.ldb + p];
      else
        for (int64_t j = 0; j < s.n; ++j) row[j] += av * b[p * s.ldb + j];
    }
  }
}

}  // namespace tessera::kernels::ref
