#pragma once
// The f32 SIMD kernels of one instruction set, as a table of function pointers. simd_avx2.cpp and
// simd_avx512.cpp each fill one from the same source (simd_*.inl); the public entry points
// (elementwise.cpp, reduce.cpp, ...) ask simd_table() for the current path's table and fall back
// to the scalar reference when it is null (the scalar path) or a kernel declines an op.
#include <cstdint>

#include "kernels/bias_act.h"
#include "kernels/elementwise.h"

namespace tessera::kernels {

// The vectorized math functions themselves, for their error-bound tests and benchmarks.
enum class MathFn { exp, log, tanh, erf, sigmoid };

// The per-step constants of AdamW (see adamw_ref.h), as floats.
struct PackedGemmCall;  // packed_gemm.h

struct AdamWConstants {
  float decay, beta1, beta2, step_size, inv_sqrt_bc2, eps;
};

// The small-GEMM kernel packs op(B) into a stack buffer of this many floats (64 KiB).
constexpr int64_t kSmallGemmPackFloats = 16384;

struct SimdTable {
  void (*math)(MathFn fn, const float* x, float* y, int64_t n);
  // Elementwise; unary ops return false for the ops they leave to the reference (pow).
  bool (*unary)(UnaryOp op, const float* x, float* y, int64_t n, float p0, float p1);
  bool (*unary_backward)(UnaryOp op, const float* x, const float* y, const float* gy, float* gx, int64_t n, float p0,
                         float p1);
  void (*binary)(BinaryOp op, const float* a, int64_t sa, const float* b, int64_t sb, float* y, int64_t n);
  void (*axpy)(float alpha, const float* x, float* y, int64_t n);
  // Rows (see reduce.h).
  void (*sum_rows)(const float* x, int64_t rows, int64_t cols, float* out);
  void (*max_rows)(const float* x, int64_t rows, int64_t cols, float* out, int64_t* argmax);
  void (*var_rows)(const float* x, int64_t rows, int64_t cols, int64_t correction, float* var, float* mean);
  void (*softmax_rows)(const float* x, int64_t rows, int64_t cols, float* y);
  void (*log_softmax_rows)(const float* x, int64_t rows, int64_t cols, float* y);
  void (*softmax_backward_rows)(const float* y, const float* gy, int64_t rows, int64_t cols, float* gx);
  void (*log_softmax_backward_rows)(const float* y, const float* gy, int64_t rows, int64_t cols, float* gx);
  // Fused kernels (bias_act.h, layer_norm.h, cross_entropy.h, adamw.h), on blocks of rows;
  // column sums on a block of columns of a matrix with leading dimension ld.
  void (*bias_act_forward)(Activation act, const float* x, const float* bias, int64_t rows, int64_t cols, float* y);
  // Backward row blocks; non-null dbias / dgamma, dbeta get the block's column sums.
  void (*bias_act_backward)(Activation act, const float* x, const float* bias, const float* dy, int64_t rows,
                            int64_t cols, float* dx, float* dbias);
  void (*column_sums)(const float* x, int64_t rows, int64_t cols, int64_t ld, float* out);
  // A block of rows against one gate vector (modulation.h).
  void (*gated_add_forward)(const float* x, const float* a, const float* gate, int64_t rows, int64_t cols, float* y);
  void (*gated_add_backward)(const float* a, const float* gate, const float* dy, int64_t rows, int64_t cols, float* da,
                             float* dgate);
  void (*layer_norm_forward)(const float* x, const float* residual, const float* gamma, const float* beta,
                             int64_t rows, int64_t cols, float eps, float* sum, float* y, float* mean, float* rstd);
  void (*layer_norm_backward)(const float* x, const float* gamma, const float* mean, const float* rstd,
                              const float* dy, int64_t rows, int64_t cols, float* dx, float* dgamma, float* dbeta);
  void (*cross_entropy)(const float* logits, const int64_t* targets, int64_t rows, int64_t cols, float grad_scale,
                        float* loss, float* dlogits);
  void (*adamw)(float* p, const float* g, float* m, float* v, int64_t n, const AdamWConstants& k);
  // C = alpha op(A) op(B) + beta C for small products (k * n rounded up to vectors must fit
  // kSmallGemmPackFloats); see simd_gemm.inl.
  void (*small_gemm)(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                     const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
  // Our packed GEMM on one thread (packed_gemm.h, simd_packed_gemm.inl).
  void (*packed_gemm)(const PackedGemmCall& call);
  // Layout (transpose.h).
  void (*transpose)(const float* in, int64_t rows, int64_t cols, int64_t ld_in, float* out, int64_t ld_out);
};

namespace avx2 {
const SimdTable& table();
}
namespace avx512 {
const SimdTable& table();
}

// The table of the current SIMD path, or nullptr on the scalar path.
const SimdTable* simd_table();

}  // namespace tessera::kernels
