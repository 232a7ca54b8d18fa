#pragma once
// Scalar reference of the fused bias + activation (see bias_act.h), built on the elementwise ones.
#include <cstdint>

#include "kernels/bias_act.h"
#include "kernels/elementwise_ref.h"

namespace tessera::kernels::ref {

template <class T>
T activate(Activation act, T v) {
  switch (act) {
    case Activation::identity: return v;
    case Activation::relu: return unary_one(UnaryOp::relu, v, T(0), T(0));
    case Activation::gelu_tanh: return unary_one(UnaryOp::gelu_tanh, v, T(0), T(0));
    case Activation::gelu_erf: return unary_one(UnaryOp::gelu_erf, v, T(0), T(0));
    case Activation::silu: return unary_one(UnaryOp::silu, v, T(0), T(0));
  }
  return v;
}

template <class T>
T activate_grad(Activation act, T v) {
  switch (act) {
    case Activation::identity: return T(1);
    case Activation::relu: return unary_grad_one(UnaryOp::relu, v, T(0), T(0), T(0));
    case Activation::gelu_tanh: return unary_grad_one(UnaryOp::gelu_tanh, v, T(0), T(0), T(0));
    case Activation::gelu_erf: return unary_grad_one(UnaryOp::gelu_erf, v, T(0), T(0), T(0));
    case Activation::silu: return unary_grad_one(UnaryOp::silu, v, T(0), T(0), T(0));
  }
  return T(1);
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
