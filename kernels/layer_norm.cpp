#include "kernels/layer_norm.h"

#include "kernels/layer_norm_ref.h"
#include "kernels/row_blocks.h"
#include "kernels/simd_table.h"

namespace tessera::kernels {

void layer_norm_forward(const float* x, const float* gamma, const float* beta, int64_t rows, int64_t cols, float eps,
                        float* y, float* mean, float* rstd) {
  const SimdTable* s = simd_table();
  if (!s) return ref::layer_norm_forward(x, gamma, beta, rows, cols, eps, y, mean, rstd);
  by_row_blocks(rows, cols, [&](int64_t r, int64_t n) {
    s->layer_norm_forward(x + r * cols, nullptr, gamma, beta, n, cols, eps, nullptr, y + r * cols, mean + r, rstd + r);
  });
}

void layer_norm_forward(const double* x, const double* gamma, const double* beta, int64_t rows, int64_t cols,
                        double eps, double* y, double* mean, double* rstd) {
  ref::layer_norm_forward(x, gamma, beta, rows, cols, eps, y, mean, rstd);
}

void add_layer_norm_forward(const float* x, const float* residual, const float* gamma, const float* beta,
                            int64_t rows, int64_t cols, float eps, float* sum, float* y, float* mean, float* rstd) {
  const SimdTable* s = simd_table();
  if (!s) return ref::add_layer_norm_forward(x, residual, gamma, beta, rows, cols, eps, sum, y, mean, rstd);
  by_row_blocks(rows, cols, [&](int64_t r, int64_t n) {
    const int64_t o = r * cols;
    s->layer_norm_forward(x + o, residual + o, gamma, beta, n, cols, eps, sum + o, y + o, mean + r, rstd + r);
  });
}

void add_layer_norm_forward(const double* x, const double* residual, const double* gamma, const double* beta,
                            int64_t rows, int64_t cols, double eps, double* sum, double* y, double* mean,
                            double* rstd) {
  ref::add_layer_norm_forward(x, residual, gamma, beta, rows, cols, eps, sum, y, mean, rstd);
}

void layer_norm_backward(const float* x, const float* gamma, const float* mean, const float* rstd, const float* dy,
                         int64_t rows, int64_t cols, float* dx, float* dgamma, float* dbeta) {
  const SimdTable* s = simd_table();
  if (!s) return ref::layer_norm_backward(x, gamma, mean, rstd, dy, rows, cols, dx, dgamma, dbeta);
  if (!dgamma && !dbeta) {
    by_row_blocks(rows, cols, [&](int64_t r, int64_t n) {
      s->layer_norm_backward(x + r * cols, gamma, mean + r, rstd + r, dy + r * cols, n, cols, dx + r * cols, nullptr,
                             nullptr);
    });
    return;
  }
  // Per block of rows: dx and, in the same pass, the block's dgamma/dbeta partials.
  const int64_t blocks = (rows + kSumBlockRows - 1) / kSumBlockRows;
  float* partial_g = partials_scratch(2 * blocks * cols);
  float* partial_b = partial_g + blocks * cols;
  by_sum_blocks(rows, cols, [&](int64_t r, int64_t n, int64_t b) {
    const int64_t o = r * cols;
    s->layer_norm_backward(x + o, gamma, mean + r, rstd + r, dy + o, n, cols, dx + o, partial_g + b * cols,
                           partial_b + b * cols);
  });
  if (dgamma) s->column_sums(partial_g, blocks, cols, cols, dgamma);
  if (dbeta) s->column_sums(partial_b, blocks, cols, cols, dbeta);
}

void layer_norm_backward(const double* x, const double* gamma, const double* mean, const double* rstd,
                         const double* dy, int64_t rows, int64_t cols, double* dx, double* dgamma, double* dbeta) {
  ref::layer_norm_backward(x, gamma, mean, rstd, dy, rows, cols, dx, dgamma, dbeta);
}

}  // namespace tessera::kernels
