#pragma once
// Fused bias + activation over a row-major [rows, cols] matrix with one bias per column: the
// epilogue of a Linear layer in one pass instead of two.
#include <cstdint>

#include "kernels/activation.h"

namespace tessera::kernels {

// y[r, c] = act(x[r, c] + bias[c]); bias may be null (no bias). y may alias x.
void bias_act_forward(Activation act, const float* x, const float* bias, int64_t rows, int64_t cols, float* y);
void bias_act_forward(Activation act, const double* x, const double* bias, int64_t rows, int64_t cols, double* y);

// dx[r, c] = dy[r, c] * act'(x[r, c] + bias[c]) and, when dbias is not null,
// dbias[c] = sum_r dx[r, c] (overwritten, summed in row order: independent of the thread count).
// x is the forward's input (before the bias). dx may alias dy.
void bias_act_backward(Activation act, const float* x, const float* bias, const float* dy, int64_t rows, int64_t cols,
                       float* dx, float* dbias);
void bias_act_backward(Activation act, const double* x, const double* bias, const double* dy, int64_t rows,
                       int64_t cols, double* dx, double* dbias);

// dbias[c] = sum_r dy[r, c]: bias_act_backward's dbias for the identity activation, bitwise, without
// writing dx (which would be a copy of dy).
void bias_gradient(const float* dy, int64_t rows, int64_t cols, float* dbias);
void bias_gradient(const double* dy, int64_t rows, int64_t cols, double* dbias);

}  // namespace tessera::kernels
