#pragma once
// Scalar reference of every elementwise kernel: the definition the SIMD versions are tested
// against, and the path f64 (gradient checks) always takes.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/elementwise.h"

namespace tessera::kernels::ref {

template <class T>
inline T gelu_tanh(T x) {
  const T c = T(0.7978845608028654);  // sqrt(2/pi)
  return T(0.5) * x * (T(1) + std::tanh(c * (x + T(0.044715) * x * x * x)));
}

template <class T>
inline T gelu_tanh_grad(T x) {
  const T c = T(0.7978845608028654);
  const T u = c * (x + T(0.044715) * x * x * x);
  const T t = std::tanh(u);
  const T du = c * (T(1) + T(3 * 0.044715) * x * x);
  return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du;
}

template <class T>
inline T sigmoid(T x) {
  return x >= 0 ? T(1) / (T(1) + std::exp(-x)) : std::exp(x) / (T(1) + std::exp(x));
}

template <class T>
inline T silu_grad(T x) {
  const T s = sigmoid(x);
  return s * (T(1) + x * (T(1) - s));
}

template <class T>
inline T gelu_erf(T x) {
  return T(0.5) * x * (T(1) + std::erf(x * T(0.7071067811865476)));
}

template <class T>
inline T gelu_erf_grad(T x) {
  const T cdf = T(0.5) * (T(1) + std::erf(x * T(0.7071067811865476)));
  const T pdf = std::exp(T(-0.5) * x * x) * T(0.3989422804014327);
  return cdf + x * pdf;
}

// f(x), as elementwise_ops.def declares it.
template <class T>
inline T unary_one(UnaryOp op, T x, T p0, T p1) {
  switch (op) {
#define TESSERA_UNARY_OP(id, name, domain, scalar, ...) \
  case UnaryOp::id: return scalar;
#include "kernels/elementwise_ops.def"
  }
  return x;
}

// d f(x) / dx, given x and y = f(x).
template <class T>
inline T unary_grad_one(UnaryOp op, T x, T y, T p0, T p1) {
  switch (op) {
#define TESSERA_UNARY_OP(id, name, domain, scalar, derivative, ...) \
  case UnaryOp::id: return derivative;
#include "kernels/elementwise_ops.def"
  }
  return T(0);
}

template <class T>
void unary(UnaryOp op, const T* x, T* y, int64_t n, T p0, T p1) {
  for (int64_t i = 0; i < n; ++i) y[i] = unary_one(op, x[i], p0, p1);
}

template <class T>
void unary_backward(UnaryOp op, const T* x, const T* y, const T* gy, T* gx, int64_t n, T p0, T p1) {
  for (int64_t i = 0; i < n; ++i) gx[i] = gy[i] * unary_grad_one(op, x[i], y[i], p0, p1);
}

template <class T>
inline T binary_one(BinaryOp op, T a, T b) {
  switch (op) {
#define TESSERA_BINARY_OP(id, name, scalar, ...) \
  case BinaryOp::id: return scalar;
#include "kernels/elementwise_ops.def"
  }
  return a;
}

template <class T>
void binary(BinaryOp op, const T* a, int64_t sa, const T* b, int64_t sb, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = binary_one(op, a[i * sa], b[i * sb]);
}

template <class T>
void axpy(T alpha, const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

}  // namespace tessera::kernels::ref
