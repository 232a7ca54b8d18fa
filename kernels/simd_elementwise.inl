// Elementwise f32 kernels, written once on kernels/vec.h and compiled per instruction set
// (included by simd_avx2.cpp and simd_avx512.cpp only).
#include "kernels/vec_math.h"

namespace tessera::kernels::TESSERA_SIMD_NS {

// y[i] = f(x[i]) over full vectors, then one masked vector for the tail.
template <class Fn>
inline void map1(const float* x, float* y, int64_t n, Fn f) {
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) store(y + i, f(load(x + i)));
  if (i < n) store_part(y + i, f(load_part(x + i, n - i)), n - i);
}

// out[i] = f(a[i], b[i], c[i]) (three streams, for the backward passes).
template <class Fn>
inline void map3(const float* a, const float* b, const float* c, float* out, int64_t n, Fn f) {
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) store(out + i, f(load(a + i), load(b + i), load(c + i)));
  if (i < n) {
    const int64_t r = n - i;
    store_part(out + i, f(load_part(a + i, r), load_part(b + i, r), load_part(c + i, r)), r);
  }
}

inline void math(MathFn fn, const float* x, float* y, int64_t n) {
  switch (fn) {
    case MathFn::exp: map1(x, y, n, [](F v) { return exp(v); }); return;
    case MathFn::log: map1(x, y, n, [](F v) { return log(v); }); return;
    case MathFn::tanh: map1(x, y, n, [](F v) { return tanh(v); }); return;
    case MathFn::erf: map1(x, y, n, [](F v) { return erf(v); }); return;
    case MathFn::sigmoid: map1(x, y, n, [](F v) { return sigmoid(v); }); return;
  }
}

inline F gelu_tanh(F x) {
  const F u = set1(0.7978845608028654f) * fma(set1(0.044715f) * x * x, x, x);
  return set1(0.5f) * x * (set1(1.0f) + tanh(u));
}

inline F gelu_tanh_grad(F x) {
  const F x2 = x * x;
  const F u = set1(0.7978845608028654f) * fma(set1(0.044715f) * x2, x, x);
  const F t = tanh(u);
  const F du = set1(0.7978845608028654f) * fma(set1(3 * 0.044715f), x2, set1(1.0f));
  return fma(set1(0.5f) * x * fnma(t, t, set1(1.0f)), du, set1(0.5f) * (set1(1.0f) + t));
}

// 1 + erf(..) only needs erf to an absolute 1.5e-7, so A&S 7.1.26 alone does (no |x| < 1 branch).
inline F gelu_erf(F x) {
  const F v = x * set1(0.7071067811865476f);
  return set1(0.5f) * x * (set1(1.0f) + erf_abs_with_exp(v, exp_nonpositive(neg(v * v))));
}

// One exponential for both terms: e^{-v^2} with v = x/sqrt(2) is the density's e^{-x^2/2}.
inline F gelu_erf_grad(F x) {
  const F v = x * set1(0.7071067811865476f);
  const F e = exp_nonpositive(neg(v * v));
  const F cdf = set1(0.5f) * (set1(1.0f) + erf_abs_with_exp(v, e));
  const F pdf = e * set1(0.3989422804014327f);
  return fma(x, pdf, cdf);
}

inline F silu_grad(F x) {
  const F s = sigmoid(x);
  return s * fma(x, set1(1.0f) - s, set1(1.0f));
}

inline bool unary(UnaryOp op, const float* x, float* y, int64_t n, float p0, float p1) {
  const F zero_v = zero();
  switch (op) {
    case UnaryOp::neg: map1(x, y, n, [](F v) { return neg(v); }); return true;
    case UnaryOp::exp: map1(x, y, n, [](F v) { return exp(v); }); return true;
    case UnaryOp::log: map1(x, y, n, [](F v) { return log(v); }); return true;
    case UnaryOp::sqrt: map1(x, y, n, [](F v) { return sqrt(v); }); return true;
    case UnaryOp::abs: map1(x, y, n, [](F v) { return abs(v); }); return true;
    case UnaryOp::tanh: map1(x, y, n, [](F v) { return tanh(v); }); return true;
    case UnaryOp::sigmoid: map1(x, y, n, [](F v) { return sigmoid(v); }); return true;
    case UnaryOp::relu: map1(x, y, n, [&](F v) { return select(gt(v, zero_v), v, zero_v); }); return true;
    case UnaryOp::silu: map1(x, y, n, [](F v) { return v * sigmoid(v); }); return true;
    case UnaryOp::gelu_tanh: map1(x, y, n, [](F v) { return gelu_tanh(v); }); return true;
    case UnaryOp::gelu_erf: map1(x, y, n, [](F v) { return gelu_erf(v); }); return true;
    case UnaryOp::square: map1(x, y, n, [](F v) { return v * v; }); return true;
    case UnaryOp::clamp: {
      // std::min(std::max(x, lo), hi): NaN stays NaN, as in the reference.
      const F lo = set1(p0), hi = set1(p1);
      map1(x, y, n, [&](F v) { return select(is_nan(v), v, min(hi, max(lo, v))); });
      return true;
    }
    case UnaryOp::scale: {
      const F a = set1(p0), b = set1(p1);
      map1(x, y, n, [&](F v) { return fma(v, a, b); });
      return true;
    }
    case UnaryOp::pow: return false;
  }
  return false;
}

inline bool unary_backward(UnaryOp op, const float* x, const float* y, const float* gy, float* gx, int64_t n,
                           float p0, float p1) {
  const F zero_v = zero(), one = set1(1.0f);
  switch (op) {
    case UnaryOp::neg: map3(x, y, gy, gx, n, [](F, F, F g) { return neg(g); }); return true;
    case UnaryOp::exp: map3(x, y, gy, gx, n, [](F, F v, F g) { return g * v; }); return true;
    case UnaryOp::log: map3(x, y, gy, gx, n, [](F u, F, F g) { return g / u; }); return true;
    case UnaryOp::sqrt: map3(x, y, gy, gx, n, [](F, F v, F g) { return g * (set1(0.5f) / v); }); return true;
    case UnaryOp::abs:
      map3(x, y, gy, gx, n, [&](F u, F, F g) {
        return g * select(gt(u, zero_v), one, select(lt(u, zero_v), set1(-1.0f), zero_v));
      });
      return true;
    case UnaryOp::tanh: map3(x, y, gy, gx, n, [&](F, F v, F g) { return g * fnma(v, v, one); }); return true;
    case UnaryOp::sigmoid: map3(x, y, gy, gx, n, [&](F, F v, F g) { return g * (v * (one - v)); }); return true;
    case UnaryOp::relu:
      map3(x, y, gy, gx, n, [&](F u, F, F g) { return g * select(gt(u, zero_v), one, zero_v); });
      return true;
    case UnaryOp::silu: map3(x, y, gy, gx, n, [](F u, F, F g) { return g * silu_grad(u); }); return true;
    case UnaryOp::gelu_tanh: map3(x, y, gy, gx, n, [](F u, F, F g) { return g * gelu_tanh_grad(u); }); return true;
    case UnaryOp::gelu_erf: map3(x, y, gy, gx, n, [](F u, F, F g) { return g * gelu_erf_grad(u); }); return true;
    case UnaryOp::square: map3(x, y, gy, gx, n, [](F u, F, F g) { return g * (u + u); }); return true;
    case UnaryOp::clamp: {
      const F lo = set1(p0), hi = set1(p1);
      map3(x, y, gy, gx, n, [&](F u, F, F g) { return g * select(both(ge(u, lo), le(u, hi)), one, zero_v); });
      return true;
    }
    case UnaryOp::scale: {
      const F a = set1(p0);
      map3(x, y, gy, gx, n, [&](F, F, F g) { return g * a; });
      return true;
    }
    case UnaryOp::pow: return false;
  }
  return false;
}

template <class Op>
inline void binary_strided(const float* a, int64_t sa, const float* b, int64_t sb, float* y, int64_t n, Op f) {
  // sa, sb in {0, 1}: a stride of 0 broadcasts the one value.
  int64_t i = 0;
  if (sa == 1 && sb == 1) {
    for (; i + lanes <= n; i += lanes) store(y + i, f(load(a + i), load(b + i)));
    if (i < n) store_part(y + i, f(load_part(a + i, n - i), load_part(b + i, n - i)), n - i);
  } else if (sa == 0 && sb == 1) {
    const F av = set1(a[0]);
    for (; i + lanes <= n; i += lanes) store(y + i, f(av, load(b + i)));
    if (i < n) store_part(y + i, f(av, load_part(b + i, n - i)), n - i);
  } else if (sa == 1 && sb == 0) {
    const F bv = set1(b[0]);
    for (; i + lanes <= n; i += lanes) store(y + i, f(load(a + i), bv));
    if (i < n) store_part(y + i, f(load_part(a + i, n - i), bv), n - i);
  } else {
    const F v = f(set1(a[0]), set1(b[0]));
    for (; i + lanes <= n; i += lanes) store(y + i, v);
    if (i < n) store_part(y + i, v, n - i);
  }
}

inline void binary(BinaryOp op, const float* a, int64_t sa, const float* b, int64_t sb, float* y, int64_t n) {
  switch (op) {
    case BinaryOp::add: binary_strided(a, sa, b, sb, y, n, [](F u, F v) { return u + v; }); return;
    case BinaryOp::sub: binary_strided(a, sa, b, sb, y, n, [](F u, F v) { return u - v; }); return;
    case BinaryOp::mul: binary_strided(a, sa, b, sb, y, n, [](F u, F v) { return u * v; }); return;
    case BinaryOp::div: binary_strided(a, sa, b, sb, y, n, [](F u, F v) { return u / v; }); return;
    // std::max(a, b) returns a unless a < b; std::min(a, b) returns a unless b < a.
    case BinaryOp::maximum: binary_strided(a, sa, b, sb, y, n, [](F u, F v) { return select(lt(u, v), v, u); }); return;
    case BinaryOp::minimum: binary_strided(a, sa, b, sb, y, n, [](F u, F v) { return select(lt(v, u), v, u); }); return;
  }
}

inline void axpy(float alpha, const float* x, float* y, int64_t n) {
  const F a = set1(alpha);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) store(y + i, fma(a, load(x + i), load(y + i)));
  if (i < n) store_part(y + i, fma(a, load_part(x + i, n - i), load_part(y + i, n - i)), n - i);
}

}  // namespace tessera::kernels::TESSERA_SIMD_NS
