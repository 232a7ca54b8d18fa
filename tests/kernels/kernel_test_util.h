#pragma once
// Shared helpers of the kernel tests: the sizes that hit every vector tail, seeded random data,
// and a loop over the SIMD paths this CPU can run (a missing path is reported, not failed).
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/cpu.h"
#include "kernels/gemm.h"

namespace tessera::kernels::testing {

inline const std::vector<int64_t>& tail_sizes() {
  static const std::vector<int64_t> sizes{0, 1, 7, 15, 16, 17, 31, 33, 1000, 4097};
  return sizes;
}

template <class T = float>
std::vector<T> random_vector(int64_t n, uint64_t seed, double low = -1, double high = 1) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(low, high);
  std::vector<T> v(size_t(n) + 1);  // one spare element lets a test shift the data by one float
  for (auto& x : v) x = T(dist(gen));
  return v;
}

// A GEMM shape whose leading dimensions are op(X)'s stored widths plus `pad`, so that they differ
// from the widths.
inline GemmShape gemm_shape(bool ta, bool tb, int64_t m, int64_t n, int64_t k, int64_t pad) {
  GemmShape s;
  s.trans_a = ta, s.trans_b = tb;
  s.m = m, s.n = n, s.k = k;
  s.lda = (ta ? m : k) + pad;
  s.ldb = (tb ? k : n) + pad;
  s.ldc = n + pad;
  return s;
}
// Rows of A and B as stored.
inline int64_t rows_a(const GemmShape& s) { return s.trans_a ? s.k : s.m; }
inline int64_t rows_b(const GemmShape& s) { return s.trans_b ? s.n : s.k; }

// Runs body(path) on every SIMD path, restoring the path in use afterwards.
template <class F>
void for_each_simd_path(F&& body) {
  const SimdPath saved = simd_path();
  for (SimdPath p : {SimdPath::scalar, SimdPath::avx2, SimdPath::avx512}) {
    if (!cpu_supports(p)) {
      BOOST_TEST_MESSAGE("skipping SIMD path " << simd_path_name(p) << ": this CPU lacks it");
      continue;
    }
    set_simd_path(p);
    BOOST_TEST_CONTEXT("simd path " << simd_path_name(p)) { body(p); }
  }
  set_simd_path(saved);
}

// |a - b| <= abs_tol + rel_tol * |b|, NaN matching NaN and infinities matching exactly.
inline bool close(double a, double b, double rel_tol, double abs_tol) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::abs(a - b) <= abs_tol + rel_tol * std::abs(b);
}

// Checks got[i] against want[i]; one assertion per call, naming the first mismatch only, so that
// a 4097-element loop stays readable.
template <class A, class B>
void check_close(const A* got, const B* want, int64_t n, double rel_tol, double abs_tol, const char* what) {
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < n; ++i)
    if (!close(double(got[i]), double(want[i]), rel_tol, abs_tol) && bad++ == 0) first = i;
  BOOST_TEST(bad == 0, what << ": " << bad << " of " << n << " elements differ; first at " << first << ": "
                            << (first >= 0 ? double(got[first]) : 0.0) << " vs expected "
                            << (first >= 0 ? double(want[first]) : 0.0));
}

}  // namespace tessera::kernels::testing
