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
inline T unary_one(UnaryOp op, T x, T p0, T p1) {
  switch (op) {
    case UnaryOp::neg: return -x;
    case UnaryOp::exp: return std::exp(x);
    case UnaryOp::log: return std::log(x);
    case UnaryOp::sqrt: return std::sqrt(x);
    case UnaryOp::abs: return std::abs(x);
    case UnaryOp::tanh: return std::tanh(x);
    case UnaryOp::sigmoid: return sigmoid(x);
    case UnaryOp::relu: return x > 0 ? x : T(0);
    case UnaryOp::silu: return x * sigmoid(x);
    case UnaryOp::gelu_tanh: return gelu_tanh(x);
    case UnaryOp::gelu_erf: return T(0.5) * x * (T(1) + std::erf(x * T(0.7071067811865476)));
    case UnaryOp::square: return x * x;
    case UnaryOp::pow: return std::pow(x, p0);
    case UnaryOp::clamp: return std::min(std::max(x, p0), p1);
    case UnaryOp::scale: return x * p0 + p1;
  }
  return x;
}

// d f(x) / dx, given x and y = f(x).
template <class T>
inline T unary_grad_one(UnaryOp op, T x, T y, T p0, T p1) {
  switch (op) {
    case UnaryOp::neg: return T(-1);
    case UnaryOp::exp: return y;
    case UnaryOp::log: return T(1) / x;
    case UnaryOp::sqrt: return T(0.5) / y;
    case UnaryOp::abs: return x > 0 ? T(1) : (x < 0 ? T(-1) : T(0));
    case UnaryOp::tanh: return T(1) - y * y;
    case UnaryOp::sigmoid: return y * (T(1) - y);
    case UnaryOp::relu: return x > 0 ? T(1) : T(0);
    case UnaryOp::silu: {
      const T s = sigmoid(x);
      return s * (T(1) + x * (T(1) - s));
    }
    case UnaryOp::gelu_tanh: return gelu_tanh_grad(x);
    case UnaryOp::gelu_erf: {
      const T cdf = T(0.5) * (T(1) + std::erf(x * T(0.7071067811865476)));
      const T pdf = std::exp(T(-0.5) * x * x) * T(0.3989422804014327);
      return cdf + x * pdf;
    }
    case UnaryOp::square: return T(2) * x;
    case UnaryOp::pow: return p0 == T(0) ? T(0) : p0 * std::pow(x, p0 - T(1));
    // PyTorch's convention: the gradient passes where min <= x <= max.
    case UnaryOp::clamp: return (x >= p0 && x <= p1) ? T(1) : T(0);
    case UnaryOp::scale: return p0;
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
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
    case BinaryOp::maximum: return std::max(a, b);
    case BinaryOp::minimum: return std::min(a, b);
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
