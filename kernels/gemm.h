#pragma once
// One GEMM interface for everything: C = alpha * op(A) op(B) + beta * C, row-major, with
// op = transpose when the flag is set. Strided batches cover batched matmul and attention.
#include <cstdint>

namespace tessera::kernels {

struct GemmShape {
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
};

void gemm(const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c);
void gemm(const GemmShape& s, double alpha, const double* a, const double* b, double beta, double* c);

// batch products; stride_* = elements between consecutive matrices (0 = the same matrix for all).
void gemm_batched(const GemmShape& s, int64_t batch, float alpha, const float* a, int64_t stride_a, const float* b,
                  int64_t stride_b, float beta, float* c, int64_t stride_c);
void gemm_batched(const GemmShape& s, int64_t batch, double alpha, const double* a, int64_t stride_a,
                  const double* b, int64_t stride_b, double beta, double* c, int64_t stride_c);

// Which library or kernel runs GEMM, for `tessera info`.
const char* gemm_backend_name();
// Which one gemm() runs for this f32 shape ("ours (packed)", "OpenBLAS", ...), for the benchmark.
const char* gemm_backend_for(const GemmShape& s);

}  // namespace tessera::kernels
