#pragma once
// LayerNorm over the last axis of a row-major [rows, cols] matrix, optionally fused with the
// residual add that precedes it in a pre-norm transformer block.
#include <cstdint>

namespace tessera::kernels {

// y = (x - mean) * rstd * gamma + beta per row, rstd = 1/sqrt(var + eps) (population variance).
// Saves mean[rows] and rstd[rows] for the backward. gamma and beta may be null (no affine).
void layer_norm_forward(const float* x, const float* gamma, const float* beta, int64_t rows, int64_t cols, float eps,
                        float* y, float* mean, float* rstd);
void layer_norm_forward(const double* x, const double* gamma, const double* beta, int64_t rows, int64_t cols,
                        double eps, double* y, double* mean, double* rstd);

// Fused residual: sum = x + residual (written out: it is the block's new residual stream), then
// y = layer_norm(sum). The backward is layer_norm_backward on `sum`; its dx flows to both inputs.
void add_layer_norm_forward(const float* x, const float* residual, const float* gamma, const float* beta,
                            int64_t rows, int64_t cols, float eps, float* sum, float* y, float* mean, float* rstd);
void add_layer_norm_forward(const double* x, const double* residual, const double* gamma, const double* beta,
                            int64_t rows, int64_t cols, double eps, double* sum, double* y, double* mean,
                            double* rstd);

// With xhat = (x - mean) * rstd and g = dy * gamma:
//   dx = rstd * (g - mean_c(g) - xhat * mean_c(g * xhat))
//   dgamma[c] = sum_r dy * xhat, dbeta[c] = sum_r dy  (overwritten; either may be null)
// Column sums run in row order, so they do not depend on the thread count.
void layer_norm_backward(const float* x, const float* gamma, const float* mean, const float* rstd, const float* dy,
                         int64_t rows, int64_t cols, float* dx, float* dgamma, float* dbeta);
void layer_norm_backward(const double* x, const double* gamma, const double* mean, const double* rstd,
                         const double* dy, int64_t rows, int64_t cols, double* dx, double* dgamma, double* dbeta);

}  // namespace tessera::kernels
