#pragma once
// The f32 SIMD kernels of one instruction set, as a table of function pointers. simd_avx2.cpp and
// simd_avx512.cpp each fill one from the same source (simd_*.inl); the public entry points
// (elementwise.cpp, reduce.cpp, ...) ask simd_table() for the current path's table and fall back
// to the scalar reference when it is null (the scalar path) or a kernel declines an op.
#include <cstdint>

#include "kernels/elementwise.h"

namespace tessera::kernels {

// The vectorized math functions themselves, for their error-bound tests and benchmarks.
enum class MathFn { exp, log, tanh, erf, sigmoid };

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
