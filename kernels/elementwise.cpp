#include "kernels/elementwise.h"

#include "kernels/elementwise_ref.h"
#include "kernels/simd_table.h"
#include "kernels/threads.h"

namespace tessera::kernels {
namespace {

// Elementwise work is split into chunks of this many elements (64 KiB of f32): big enough to
// amortise a fork, small enough that two threads share a 1 MB array. Boundaries depend on n only.
constexpr int64_t kElementwiseGrain = 16384;

template <class Fn>
void chunked(int64_t n, Fn&& fn) {
  parallel_for(n, kElementwiseGrain, [&](int64_t begin, int64_t end) { fn(begin, end); });
}

// Whether the op has a vector form; the ones without run the scalar reference on every path.
constexpr bool vectorized(UnaryOp op) {
  switch (op) {
#define TESSERA_UNARY_OP(id, ...) \
  case UnaryOp::id: return true;
#define TESSERA_UNARY_SCALAR_OP(id, ...) \
  case UnaryOp::id: return false;
#include "kernels/elementwise_ops.def"
  }
  return false;
}

}  // namespace

// f32 runs the current path's SIMD kernels (kernels/simd_*.inl); f64 (gradient checks) always
// the scalar reference.
void unary(UnaryOp op, const float* x, float* y, int64_t n, float p0, float p1) {
  const SimdTable* simd = simd_table();
  if (simd == nullptr || !vectorized(op)) return ref::unary(op, x, y, n, p0, p1);
  chunked(n, [&](int64_t b, int64_t e) { simd->unary(op, x + b, y + b, e - b, p0, p1); });
}
void unary(UnaryOp op, const double* x, double* y, int64_t n, double p0, double p1) {
  ref::unary(op, x, y, n, p0, p1);
}

void unary_backward(UnaryOp op, const float* x, const float* y, const float* gy, float* gx, int64_t n, float p0,
                    float p1) {
  const SimdTable* simd = simd_table();
  if (simd == nullptr || !vectorized(op)) return ref::unary_backward(op, x, y, gy, gx, n, p0, p1);
  chunked(n, [&](int64_t b, int64_t e) { simd->unary_backward(op, x + b, y + b, gy + b, gx + b, e - b, p0, p1); });
}
void unary_backward(UnaryOp op, const double* x, const double* y, const double* gy, double* gx, int64_t n, double p0,
                    double p1) {
  ref::unary_backward(op, x, y, gy, gx, n, p0, p1);
}

void binary(BinaryOp op, const float* a, int64_t sa, const float* b, int64_t sb, float* y, int64_t n) {
  const SimdTable* simd = simd_table();
  if (simd == nullptr) return ref::binary(op, a, sa, b, sb, y, n);
  chunked(n, [&](int64_t lo, int64_t hi) { simd->binary(op, a + lo * sa, sa, b + lo * sb, sb, y + lo, hi - lo); });
}
void binary(BinaryOp op, const double* a, int64_t sa, const double* b, int64_t sb, double* y, int64_t n) {
  ref::binary(op, a, sa, b, sb, y, n);
}

void axpy(float alpha, const float* x, float* y, int64_t n) {
  const SimdTable* simd = simd_table();
  if (simd == nullptr) return ref::axpy(alpha, x, y, n);
  chunked(n, [&](int64_t b, int64_t e) { simd->axpy(alpha, x + b, y + b, e - b); });
}
void axpy(double alpha, const double* x, double* y, int64_t n) { ref::axpy(alpha, x, y, n); }

const char* unary_op_name(UnaryOp op) {
  switch (op) {
#define TESSERA_UNARY_OP(id, name, ...) \
  case UnaryOp::id: return name;
#include "kernels/elementwise_ops.def"
  }
  return "?";
}

const char* binary_op_name(BinaryOp op) {
  switch (op) {
#define TESSERA_BINARY_OP(id, name, ...) \
  case BinaryOp::id: return name;
#include "kernels/elementwise_ops.def"
  }
  return "?";
}

}  // namespace tessera::kernels
