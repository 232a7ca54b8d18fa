// Elementwise f32 kernels, written once on kernels/vec.h and compiled per instruction set
// (included by simd_avx2.cpp and simd_avx512.cpp only).
#include "kernels/vec_math.h"

namespace tessera::kernels::TESSERA_SIMD_NS {

// y[i] = f(x[i]) over full vectors, then one masked vector for the tail.
template <class Fn>
inline void map1(const float* x, float* y, int64_t n, Fn f) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) store(y + i, f(load(x + i)));
  if (i < n) store_part(y + i, f(load_part(x + i, n - i)), n - i);
}

// out[i] = f(a[i], b[i], c[i]) (three streams, for the backward passes).
template <class Fn>
inline void map3(const float* a, const float* b, const float* c, float* out, int64_t n, Fn f) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) store(out + i, f(load(a + i), load(b + i), load(c + i)));
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

// The declared vector forms of one op, for kernels that fuse it into another pass (simd_fused.inl):
// f(x), and the input gradient given x, y = f(x) and the output gradient g.
template <UnaryOp op>
F vector_form(F x, float p0 = 0, float p1 = 0);
template <UnaryOp op>
F vector_backward_form(F x, F y, F g, float p0 = 0, float p1 = 0);
#define TESSERA_UNARY_OP(id, name, domain, scalar, derivative, vector, vector_backward)                   \
  template <>                                                                                             \
  inline F vector_form<UnaryOp::id>(F x, [[maybe_unused]] float p0, [[maybe_unused]] float p1) {          \
    return vector;                                                                                        \
  }                                                                                                       \
  template <>                                                                                             \
  inline F vector_backward_form<UnaryOp::id>([[maybe_unused]] F x, [[maybe_unused]] F y, F g,             \
                                             [[maybe_unused]] float p0, [[maybe_unused]] float p1) {      \
    return vector_backward;                                                                               \
  }
#define TESSERA_UNARY_SCALAR_OP(...)
#include "kernels/elementwise_ops.def"

// The kernels of elementwise_ops.def: the declared vector form over every full vector, then one
// masked vector for the tail. Ops declared without a vector form return false (the caller runs
// the scalar reference).
inline bool unary(UnaryOp op, const float* in, float* out, int64_t n, float p0, float p1) {
  switch (op) {
#define TESSERA_UNARY_OP(id, name, domain, scalar, derivative, vector, ...) \
  case UnaryOp::id:                                                       \
    map1(in, out, n, [&](F x) { return vector; });                        \
    return true;
#define TESSERA_UNARY_SCALAR_OP(id, ...) \
  case UnaryOp::id: return false;
#include "kernels/elementwise_ops.def"
  }
  return false;
}

inline bool unary_backward(UnaryOp op, const float* in, const float* out, const float* gy, float* gx, int64_t n,
                           float p0, float p1) {
  switch (op) {
#define TESSERA_UNARY_OP(id, name, domain, scalar, derivative, vector, vector_backward)  \
  case UnaryOp::id:                                                                      \
    map3(in, out, gy, gx, n,                                                             \
         [&]([[maybe_unused]] F x, [[maybe_unused]] F y, F g) { return vector_backward; }); \
    return true;
#define TESSERA_UNARY_SCALAR_OP(id, ...) \
  case UnaryOp::id: return false;
#include "kernels/elementwise_ops.def"
  }
  return false;
}

template <class Op>
inline void binary_strided(const float* a, int64_t sa, const float* b, int64_t sb, float* y, int64_t n, Op f) {
  // sa, sb in {0, 1}: a stride of 0 broadcasts the one value.
  int64_t i = 0;
  if (sa == 1 && sb == 1) {
    for (; i + kLanes <= n; i += kLanes) store(y + i, f(load(a + i), load(b + i)));
    if (i < n) store_part(y + i, f(load_part(a + i, n - i), load_part(b + i, n - i)), n - i);
  } else if (sa == 0 && sb == 1) {
    const F av = set1(a[0]);
    for (; i + kLanes <= n; i += kLanes) store(y + i, f(av, load(b + i)));
    if (i < n) store_part(y + i, f(av, load_part(b + i, n - i)), n - i);
  } else if (sa == 1 && sb == 0) {
    const F bv = set1(b[0]);
    for (; i + kLanes <= n; i += kLanes) store(y + i, f(load(a + i), bv));
    if (i < n) store_part(y + i, f(load_part(a + i, n - i), bv), n - i);
  } else {
    const F v = f(set1(a[0]), set1(b[0]));
    for (; i + kLanes <= n; i += kLanes) store(y + i, v);
    if (i < n) store_part(y + i, v, n - i);
  }
}

inline void binary(BinaryOp op, const float* pa, int64_t sa, const float* pb, int64_t sb, float* y, int64_t n) {
  switch (op) {
#define TESSERA_BINARY_OP(id, name, scalar, vector)                        \
  case BinaryOp::id:                                                       \
    binary_strided(pa, sa, pb, sb, y, n, [](F a, F b) { return vector; }); \
    return;
#include "kernels/elementwise_ops.def"
  }
}

inline void axpy(float alpha, const float* x, float* y, int64_t n) {
  const F a = set1(alpha);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) store(y + i, fma(a, load(x + i), load(y + i)));
  if (i < n) store_part(y + i, fma(a, load_part(x + i, n - i), load_part(y + i, n - i)), n - i);
}

}  // namespace tessera::kernels::TESSERA_SIMD_NS
