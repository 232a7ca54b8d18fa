#include "kernels/bias_act.h"

#include "kernels/bias_act_ref.h"
#include "kernels/row_blocks.h"
#include "kernels/simd_table.h"

namespace tessera::kernels {

void bias_act_forward(Activation act, const float* x, const float* bias, int64_t rows, int64_t cols, float* y) {
  const SimdTable* s = simd_table();
  if (!s) return ref::bias_act_forward(act, x, bias, rows, cols, y);
  by_row_blocks(rows, cols, [&](int64_t r, int64_t n) { s->bias_act_forward(act, x + r * cols, bias, n, cols, y + r * cols); });
}

void bias_act_forward(Activation act, const double* x, const double* bias, int64_t rows, int64_t cols, double* y) {
  ref::bias_act_forward(act, x, bias, rows, cols, y);
}

void bias_act_backward(Activation act, const float* x, const float* bias, const float* dy, int64_t rows, int64_t cols,
                       float* dx, float* dbias) {
  const SimdTable* s = simd_table();
  if (!s) return ref::bias_act_backward(act, x, bias, dy, rows, cols, dx, dbias);
  if (!dbias) {
    by_row_blocks(rows, cols, [&](int64_t r, int64_t n) {
      s->bias_act_backward(act, x + r * cols, bias, dy + r * cols, n, cols, dx + r * cols, nullptr);
    });
    return;
  }
  const int64_t blocks = (rows + kSumBlockRows - 1) / kSumBlockRows;
  float* partial = partials_scratch(blocks * cols);
  by_sum_blocks(rows, cols, [&](int64_t r, int64_t n, int64_t b) {
    s->bias_act_backward(act, x + r * cols, bias, dy + r * cols, n, cols, dx + r * cols, partial + b * cols);
  });
  s->column_sums(partial, blocks, cols, cols, dbias);
}

void bias_gradient(const float* dy, int64_t rows, int64_t cols, float* dbias) {
  const SimdTable* s = simd_table();
  if (!s) return ref::column_sums(dy, rows, cols, cols, dbias);
  const int64_t blocks = (rows + kSumBlockRows - 1) / kSumBlockRows;
  float* partial = partials_scratch(blocks * cols);
  by_sum_blocks(rows, cols, [&](int64_t r, int64_t n, int64_t b) {
    s->column_sums(dy + r * cols, n, cols, cols, partial + b * cols);
  });
  s->column_sums(partial, blocks, cols, cols, dbias);
}

void bias_gradient(const double* dy, int64_t rows, int64_t cols, double* dbias) {
  ref::column_sums(dy, rows, cols, cols, dbias);
}

void bias_act_backward(Activation act, const double* x, const double* bias, const double* dy, int64_t rows,
                       int64_t cols, double* dx, double* dbias) {
  ref::bias_act_backward(act, x, bias, dy, rows, cols, dx, dbias);
}

}  // namespace tessera::kernels
