#pragma once
// Row-wise reductions and softmax on a contiguous [rows, cols] matrix. Sums are accumulated in a
// fixed blocking that does not depend on the thread count, so results are reproducible.
#include <cstdint>

namespace tessera::kernels {

// out[r] = sum_c x[r, c]
void sum_rows(const float* x, int64_t rows, int64_t cols, float* out);
void sum_rows(const double* x, int64_t rows, int64_t cols, double* out);
// out[r] = max_c x[r, c]; argmax[r] (may be null) = first index of the maximum.
void max_rows(const float* x, int64_t rows, int64_t cols, float* out, int64_t* argmax);
void max_rows(const double* x, int64_t rows, int64_t cols, double* out, int64_t* argmax);
// Two-pass variance with a Bessel-style correction (0 = population, 1 = sample); mean may be null.
void var_rows(const float* x, int64_t rows, int64_t cols, int64_t correction, float* var, float* mean);
void var_rows(const double* x, int64_t rows, int64_t cols, int64_t correction, double* var, double* mean);

// Numerically stable softmax / log-softmax over the last axis.
void softmax_rows(const float* x, int64_t rows, int64_t cols, float* y);
void softmax_rows(const double* x, int64_t rows, int64_t cols, double* y);
void log_softmax_rows(const float* x, int64_t rows, int64_t cols, float* y);
void log_softmax_rows(const double* x, int64_t rows, int64_t cols, double* y);
// gx = y * (gy - sum(gy * y))
void softmax_backward_rows(const float* y, const float* gy, int64_t rows, int64_t cols, float* gx);
void softmax_backward_rows(const double* y, const double* gy, int64_t rows, int64_t cols, double* gx);
// gx = gy - exp(y) * sum(gy), with y = log_softmax(x)
void log_softmax_backward_rows(const float* y, const float* gy, int64_t rows, int64_t cols, float* gx);
void log_softmax_backward_rows(const double* y, const double* gy, int64_t rows, int64_t cols, double* gx);

}  // namespace tessera::kernels
