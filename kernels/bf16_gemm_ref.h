#pragma once
// Scalar reference of the bf16 GEMM (bf16_gemm.h): the operands rounded to bf16, products and sums
// in double, so the tests see only the kernels' fp32 summation error beside it.
#include <cstdint>
#include <vector>

#include "kernels/bf16.h"
#include "kernels/gemm.h"

namespace tessera::kernels::ref {

inline void gemm_bf16(const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c) {
  std::vector<double> row(size_t(s.n > 0 ? s.n : 1));
  for (int64_t i = 0; i < s.m; ++i) {
    for (int64_t j = 0; j < s.n; ++j) row[size_t(j)] = 0;
    for (int64_t p = 0; p < s.k; ++p) {
      const double av = round_to_bf16(s.trans_a ? a[p * s.lda + i] : a[i * s.lda + p]);
      for (int64_t j = 0; j < s.n; ++j)
        row[size_t(j)] += av * double(round_to_bf16(s.trans_b ? b[j * s.ldb + p] : b[p * s.ldb + j]));
    }
    for (int64_t j = 0; j < s.n; ++j) {
      float& out = c[i * s.ldc + j];
      out = float(double(alpha) * row[size_t(j)] + (beta == 0.0f ? 0.0 : double(beta) * double(out)));
    }
  }
}

}  // namespace tessera::kernels::ref
