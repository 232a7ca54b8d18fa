#pragma once
// Scalar reference of the fused bias + activation (see bias_act.h), built on the elementwise ones.
#include <cstdint>

#include "kernels/bias_act.h"
#include "kernels/elementwise_ref.h"

namespace tessera::kernels::ref {

// The activation's elementwise op (activation.h), as elementwise_ref.h defines it.
template <class T>
T activate(Activation act, T v) {
  return act == Activation::identity ? v : unary_one(activation_op(act), v, T(0), T(0));
}

template <class T>
T activate_grad(Activation act, T v) {
  if (act == Activation::identity) return T(1);
  const UnaryOp op = activation_op(act);
  return unary_grad_one(op, v, unary_one(op, v, T(0), T(0)), T(0), T(0));
}

template <class T>
void bias_act_forward(Activation act, const T* x, const T* bias, int64_t rows, int64_t cols, T* y) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] = activate(act, x[r * cols + c] + (bias ? bias[c] : T(0)));
}

// out[c] = sum_r x[r * ld + c], in row order.
template <class T>
void column_sums(const T* x, int64_t rows, int64_t cols, int64_t ld, T* out) {
  for (int64_t c = 0; c < cols; ++c) out[c] = T(0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[c] += x[r * ld + c];
}

template <class T>
void bias_act_backward(Activation act, const T* x, const T* bias, const T* dy, int64_t rows, int64_t cols, T* dx,
                       T* dbias) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      dx[r * cols + c] = dy[r * cols + c] * activate_grad(act, x[r * cols + c] + (bias ? bias[c] : T(0)));
  if (dbias) column_sums(dx, rows, cols, cols, dbias);
}

}  // namespace tessera::kernels::ref
