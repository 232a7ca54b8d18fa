#include "kernels/gemm.h"

#include <cblas.h>

namespace tessera::kernels {
namespace {
CBLAS_TRANSPOSE op(bool t) { return t ? CblasTrans : CblasNoTrans; }
}  // namespace

void gemm(const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c) {
  if (s.m == 0 || s.n == 0) return;
  cblas_sgemm(CblasRowMajor, op(s.trans_a), op(s.trans_b), int(s.m), int(s.n), int(s.k), alpha, a, int(s.lda), b,
              int(s.ldb), beta, c, int(s.ldc));
}

void gemm(const GemmShape& s, double alpha, const double* a, const double* b, double beta, double* c) {
  if (s.m == 0 || s.n == 0) return;
  cblas_dgemm(CblasRowMajor, op(s.trans_a), op(s.trans_b), int(s.m), int(s.n), int(s.k), alpha, a, int(s.lda), b,
              int(s.ldb), beta, c, int(s.ldc));
}

void gemm_batched(const GemmShape& s, int64_t batch, float alpha, const float* a, int64_t stride_a, const float* b,
                  int64_t stride_b, float beta, float* c, int64_t stride_c) {
  for (int64_t i = 0; i < batch; ++i) gemm(s, alpha, a + i * stride_a, b + i * stride_b, beta, c + i * stride_c);
}

void gemm_batched(const GemmShape& s, int64_t batch, double alpha, const double* a, int64_t stride_a,
                  const double* b, int64_t stride_b, double beta, double* c, int64_t stride_c) {
  for (int64_t i = 0; i < batch; ++i) gemm(s, alpha, a + i * stride_a, b + i * stride_b, beta, c + i * stride_c);
}

const char* gemm_backend_name() { return "OpenBLAS (cblas_sgemm)"; }

}  // namespace tessera::kernels
