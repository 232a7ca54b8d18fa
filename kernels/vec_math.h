#pragma once
// Vectorized exp, log, tanh, erf and sigmoid on the F type of kernels/vec.h, and the GELUs built
// on them. The polynomials are the classic Cephes single-precision ones (erf above |x| = 1:
// Abramowitz & Stegun 7.1.26).
// Maximum error against double precision, measured by tests/kernels/test_elementwise.cpp
// (math_function_error_bounds, 2^20 points per range, same on AVX2 and AVX-512):
//   exp      1.24 ulp (1.2e-7 relative) on [-87, 88.7]; results down to denormals come out right
//   log      0.80 ulp (7.8e-8 relative) on [1e-37, 3e38]; denormal inputs, 0, <0, inf handled
//   tanh     1.30 ulp (1.4e-7 relative) on [-10, 10]
//   erf      3.0 ulp  (2.0e-7 relative) on [-5, 5]; the A&S branch (|x| >= 1) dominates
//   sigmoid  2.5 ulp  (2.1e-7 relative) on [-80, 80]
// The test fails above 2, 2, 2, 4 and 3 ulp respectively.
#include "kernels/vec.h"

namespace tessera::kernels::TESSERA_SIMD_NS {

// x = n ln2 + r with |r| <= ln2/2 (n returned in `n`); e^r by a degree-6 polynomial.
inline F exp_reduced(F x, F& n) {
  n = round_nearest(x * set1(1.44269504088896341f));
  F r = fnma(n, set1(0.693359375f), x);
  r = fnma(n, set1(-2.12194440e-4f), r);
  F p = set1(1.9875691500e-4f);
  p = fma(p, r, set1(1.3981999507e-3f));
  p = fma(p, r, set1(8.3334519073e-3f));
  p = fma(p, r, set1(4.1665795894e-2f));
  p = fma(p, r, set1(1.6666665459e-1f));
  p = fma(p, r, set1(5.0000001201e-1f));
  return fma(p, r * r, r + set1(1.0f));
}

// e^x. x = n ln2 + r with |r| <= ln2/2; e^r by a degree-6 polynomial; 2^n applied in two halves
// so that results from overflow down to gradual underflow come out right without special cases.
inline F exp(F x) {
  x = min(set1(88.8f), max(set1(-104.0f), x));  // data second: NaN passes through
  F n;
  const F p = exp_reduced(x, n);
  const I ni = to_int(n);
  const I half = shr<1>(iadd(ni, iset1(256)));  // floor(n/2) + 128, kept non-negative for the shift
  const I n1 = isub(half, iset1(128));
  const I n2 = isub(ni, n1);
  const F s1 = from_bits(shl<23>(iadd(n1, iset1(127))));
  const F s2 = from_bits(shl<23>(iadd(n2, iset1(127))));
  return (p * s1) * s2;
}

// e^x for x <= 0, with x below -87 taken as -87 (e^-87 = 1.6e-38): no denormal results, so one
// scaling step does. Same polynomial and error as exp above -87. For GELU, where e^{-x^2/2} is
// multiplied by at most 0.26 and added to 1, or multiplied by x/sqrt(2 pi).
inline F exp_nonpositive(F x) {
  x = max(set1(-87.0f), x);  // data second: NaN passes through
  F n;
  const F p = exp_reduced(x, n);
  return p * from_bits(shl<23>(iadd(to_int(n), iset1(127))));
}

// Natural log. x = m 2^e with m in [sqrt(1/2), sqrt(2)); log(m) by the Cephes polynomial.
inline F log(F x) {
  const M denormal = both(lt(x, set1(1.17549435e-38f)), gt(x, zero()));
  const F scaled = select(denormal, x * set1(8388608.0f), x);  // 2^23
  const I b = bits(scaled);
  F e = to_float(isub(shr<23>(b), iset1(126)));
  e = select(denormal, e - set1(23.0f), e);
  F m = from_bits(ior(iand(b, iset1(0x007fffff)), iset1(0x3f000000)));  // in [0.5, 1)
  const M small = lt(m, set1(0.707106781186547524f));
  e = select(small, e - set1(1.0f), e);
  m = select(small, m + m, m) - set1(1.0f);
  const F z = m * m;
  F y = set1(7.0376836292e-2f);
  y = fma(y, m, set1(-1.1514610310e-1f));
  y = fma(y, m, set1(1.1676998740e-1f));
  y = fma(y, m, set1(-1.2420140846e-1f));
  y = fma(y, m, set1(1.4249322787e-1f));
  y = fma(y, m, set1(-1.6668057665e-1f));
  y = fma(y, m, set1(2.0000714765e-1f));
  y = fma(y, m, set1(-2.4999993993e-1f));
  y = fma(y, m, set1(3.3333331174e-1f));
  y = y * m * z;
  y = fma(e, set1(-2.12194440e-4f), y);
  y = fnma(set1(0.5f), z, y);
  F result = fma(e, set1(0.693359375f), m + y);
  // Special values: log(0) = -inf, log(x < 0) = NaN, log(inf) = inf, NaN stays NaN.
  const float inf = __builtin_inff();
  result = select(eq(x, zero()), set1(-inf), result);
  result = select(lt(x, zero()), set1(__builtin_nanf("")), result);
  result = select(eq(x, set1(inf)), set1(inf), result);
  return select(is_nan(x), x, result);
}

inline F tanh(F x) {
  const F ax = abs(x);
  // Small |x|: odd polynomial (no cancellation). Large: 1 - 2/(e^{2|x|} + 1), sign restored.
  const F z = x * x;
  F p = set1(-5.70498872745e-3f);
  p = fma(p, z, set1(2.06390887954e-2f));
  p = fma(p, z, set1(-5.37397155531e-2f));
  p = fma(p, z, set1(1.33314422036e-1f));
  p = fma(p, z, set1(-3.33332819422e-1f));
  const F small = fma(p * z, x, x);
  const F big_abs = set1(1.0f) - set1(2.0f) / (exp(ax + ax) + set1(1.0f));
  const F big = select(lt(x, zero()), neg(big_abs), big_abs);
  return select(lt(ax, set1(0.625f)), small, big);
}

// erf to ~1.5e-7 absolute by Abramowitz & Stegun 7.1.26 alone, given e = e^{-x^2}: poor in
// relative terms near 0 (where erf ~ x), enough for GELU, whose 1 + erf(..) needs absolute
// accuracy only. Past |x| = 16 e is 0 and t does not matter; capping keeps the reciprocal's
// Newton step away from inf * 0.
inline F erf_abs_with_exp(F x, F e) {
  const F t = reciprocal(fma(set1(0.3275911f), min(set1(16.0f), abs(x)), set1(1.0f)));
  F q = set1(1.061405429f);
  q = fma(q, t, set1(-1.453152027f));
  q = fma(q, t, set1(1.421413741f));
  q = fma(q, t, set1(-0.284496736f));
  q = fma(q, t, set1(0.254829592f));
  q = q * t;
  const F big_abs = fnma(q, e, set1(1.0f));
  return select(lt(x, zero()), neg(big_abs), big_abs);
}

// erf(x) given e = e^{-x^2} (GELU's gradient shares that exponential with its density).
inline F erf_with_exp(F x, F e) {
  const F z = x * x;
  F p = set1(7.853861353153693e-5f);  // |x| < 1: x * P(x^2), Cephes
  p = fma(p, z, set1(-8.010193625184903e-4f));
  p = fma(p, z, set1(5.188327685732524e-3f));
  p = fma(p, z, set1(-2.685381193529856e-2f));
  p = fma(p, z, set1(1.128358514861418e-1f));
  p = fma(p, z, set1(-3.761262582423300e-1f));
  p = fma(p, z, set1(1.128379165726710e+0f));
  return select(lt(abs(x), set1(1.0f)), p * x, erf_abs_with_exp(x, e));  // |x| >= 1: A&S
}

inline F erf(F x) { return erf_with_exp(x, exp(neg(x * x))); }

// 1/(1+e^-x) from e = e^{-|x|} <= 1, so neither side overflows or cancels.
inline F sigmoid(F x) {
  const F e = exp(neg(abs(x)));
  const F s = set1(1.0f) / (set1(1.0f) + e);
  return select(lt(x, zero()), e * s, s);
}

// The GELUs and SiLU's derivative, shared by the elementwise kernels and the fused bias +
// activation (elementwise_ops.def names them).
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

}  // namespace tessera::kernels::TESSERA_SIMD_NS
