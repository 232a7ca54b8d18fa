#include "kernels/reduce.h"

#include "kernels/reduce_ref.h"
#include "kernels/simd_table.h"
#include "kernels/row_blocks.h"

namespace tessera::kernels {

void sum_rows(const float* x, int64_t rows, int64_t cols, float* out) {
  const SimdTable* s = simd_table();
  if (!s) return ref::sum_rows(x, rows, cols, out);
  by_row_blocks(rows, cols, [&](int64_t r, int64_t n) { s->sum_rows(x + r * cols, n, cols, out + r); });
}
void max_rows(const float* x, int64_t rows, int64_t cols, float* out, int64_t* argmax) {
  const SimdTable* s = simd_table();
  if (!s) return ref::max_rows(x, rows, cols, out, argmax);
  by_row_blocks(rows, cols,
          [&](int64_t r, int64_t n) { s->max_rows(x + r * cols, n, cols, out + r, argmax ? argmax + r : nullptr); });
}
void var_rows(const float* x, int64_t rows, int64_t cols, int64_t correction, float* var, float* mean) {
  const SimdTable* s = simd_table();
  if (!s) return ref::var_rows(x, rows, cols, correction, var, mean);
  by_row_blocks(rows, cols, [&](int64_t r, int64_t n) {
    s->var_rows(x + r * cols, n, cols, correction, var + r, mean ? mean + r : nullptr);
  });
}
void softmax_rows(const float* x, int64_t rows, int64_t cols, float* y) {
  const SimdTable* s = simd_table();
  if (!s) return ref::softmax_rows(x, rows, cols, y);
  by_row_blocks(rows, cols, [&](int64_t r, int64_t n) { s->softmax_rows(x + r * cols, n, cols, y + r * cols); });
}
void log_softmax_rows(const float* x, int64_t rows, int64_t cols, float* y) {
  const SimdTable* s = simd_table();
  if (!s) return ref::log_softmax_rows(x, rows, cols, y);
  by_row_blocks(rows, cols, [&](int64_t r, int64_t n) { s->log_softmax_rows(x + r * cols, n, cols, y + r * cols); });
}
void softmax_backward_rows(const float* y, const float* gy, int64_t rows, int64_t cols, float* gx) {
  const SimdTable* s = simd_table();
  if (!s) return ref::softmax_backward_rows(y, gy, rows, cols, gx);
  by_row_blocks(rows, cols, [&](int64_t r, int64_t n) {
    s->softmax_backward_rows(y + r * cols, gy + r * cols, n, cols, gx + r * cols);
  });
}
void log_softmax_backward_rows(const float* y, const float* gy, int64_t rows, int64_t cols, float* gx) {
  const SimdTable* s = simd_table();
  if (!s) return ref::log_softmax_backward_rows(y, gy, rows, cols, gx);
  by_row_blocks(rows, cols, [&](int64_t r, int64_t n) {
    s->log_softmax_backward_rows(y + r * cols, gy + r * cols, n, cols, gx + r * cols);
  });
}

// f64 (gradient checks) always takes the scalar reference.
void sum_rows(const double* x, int64_t rows, int64_t cols, double* out) { ref::sum_rows(x, rows, cols, out); }
void max_rows(const double* x, int64_t rows, int64_t cols, double* out, int64_t* argmax) {
  ref::max_rows(x, rows, cols, out, argmax);
}
void var_rows(const double* x, int64_t rows, int64_t cols, int64_t correction, double* var, double* mean) {
  ref::var_rows(x, rows, cols, correction, var, mean);
}
void softmax_rows(const double* x, int64_t rows, int64_t cols, double* y) { ref::softmax_rows(x, rows, cols, y); }
void log_softmax_rows(const double* x, int64_t rows, int64_t cols, double* y) {
  ref::log_softmax_rows(x, rows, cols, y);
}
void softmax_backward_rows(const double* y, const double* gy, int64_t rows, int64_t cols, double* gx) {
  ref::softmax_backward_rows(y, gy, rows, cols, gx);
}
void log_softmax_backward_rows(const double* y, const double* gy, int64_t rows, int64_t cols, double* gx) {
  ref::log_softmax_backward_rows(y, gy, rows, cols, gx);
}

}  // namespace tessera::kernels
