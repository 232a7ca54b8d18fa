#pragma once
// One GEMM interface for everything: C = alpha * op(A) op(B) + beta * C, row-major, with
// op = transpose when the flag is set. Strided batches cover batched matmul and attention.
#include <cstdint>
#include <string>

namespace tessera::kernels {

struct GemmShape {
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
};

void gemm(const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c);
void gemm(const GemmShape& s, double alpha, const double* a, const double* b, double beta, double* c);
// In the operands' own precision whatever the matrix-product precision (below): for the products
// that are part of a loss or a nearest-neighbour search (contrastive logits, VQ distances), which
// stay fp32 as PyTorch's autocast keeps losses and cdist in fp32, and for the bf16 GEMM's convert path.
void gemm_full_precision(const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c);
void gemm_full_precision(const GemmShape& s, double alpha, const double* a, const double* b, double beta, double* c);

// batch products; stride_* = elements between consecutive matrices (0 = the same matrix for all).
void gemm_batched(const GemmShape& s, int64_t batch, float alpha, const float* a, int64_t stride_a, const float* b,
                  int64_t stride_b, float beta, float* c, int64_t stride_c);
void gemm_batched(const GemmShape& s, int64_t batch, double alpha, const double* a, int64_t stride_a,
                  const double* b, int64_t stride_b, double beta, double* c, int64_t stride_c);

// The precision of every f32 matrix product above (and so of linear layers, convolutions and
// attention): f32, or bf16 operands with fp32 accumulation (bf16_gemm.h), as PyTorch's
// set_float32_matmul_precision("medium"). Process-wide; the training loop sets it from the
// recipe's train.precision. f64 products are always f64.
enum class MatmulPrecision { f32 = 0, bf16 = 1 };
void set_matmul_precision(MatmulPrecision precision);
MatmulPrecision matmul_precision();
const char* matmul_precision_name(MatmulPrecision precision);
// Parses "fp32" or "bf16"; throws std::invalid_argument naming the text otherwise.
MatmulPrecision parse_matmul_precision(const std::string& text);

// Which library or kernel runs GEMM, for `tessera info`.
const char* gemm_backend_name();
// Which one gemm() runs for this f32 shape ("ours (packed)", "OpenBLAS", ...), for the benchmark.
const char* gemm_backend_for(const GemmShape& s);

}  // namespace tessera::kernels
