// Elementwise kernels: every SIMD path against the scalar reference at the tail sizes, on
// aligned and unaligned (shifted by one float) pointers, without writing past the end; and the
// measured error bounds of the vectorized exp, log, tanh, erf and sigmoid against double.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>

#include "kernels/elementwise.h"
#include "kernels/elementwise_ref.h"
#include "kernels/simd_table.h"
#include "kernels/threads.h"
#include "tests/kernels/kernel_test_util.h"

using namespace tessera::kernels;
using namespace tessera::kernels::testing;

namespace {

constexpr float kSentinel = 12345.0f;

// Every op of kernels/elementwise_ops.def, with the domain it declares: a new op is tested here
// without a line of its own.
enum class Domain { real, positive };
struct UnaryCase {
  UnaryOp op;
  Domain domain;
};
const UnaryCase all_unary[] = {
#define TESSERA_UNARY_OP(id, name, domain, ...) {UnaryOp::id, Domain::domain},
#include "kernels/elementwise_ops.def"
};
const BinaryOp all_binary[] = {
#define TESSERA_BINARY_OP(id, ...) BinaryOp::id,
#include "kernels/elementwise_ops.def"
};

// The GELUs compute 1 + erf/tanh, which cancels for negative x in any float implementation:
// they are held to an absolute bound there.
double abs_tol(UnaryOp op) { return op == UnaryOp::gelu_tanh || op == UnaryOp::gelu_erf ? 2e-6 : 1e-7; }

// Output buffer of n values at `offset`, with a sentinel before and after.
std::vector<float> guarded_output(int64_t n) { return std::vector<float>(size_t(n) + 2, kSentinel); }

void check_guards(const std::vector<float>& y, int64_t n, int64_t offset) {
  if (offset == 1) BOOST_TEST(y[0] == kSentinel, "element before the output was written");
  BOOST_TEST(y[size_t(n + offset)] == kSentinel, "element after the output was written");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(elementwise_kernels)

BOOST_AUTO_TEST_CASE(unary_matches_reference) {
  for_each_simd_path([](SimdPath) {
    for (const auto& [op, domain] : all_unary)
      for (int64_t n : tail_sizes())
        for (int64_t offset : {0, 1}) {
          const auto x = domain == Domain::positive ? random_vector(n, 7 + n, 0.01, 10) : random_vector(n, 7 + n, -6, 6);
          auto y = guarded_output(n);
          std::vector<float> want(size_t(n) + 1);
          const float p0 = op == UnaryOp::clamp ? -0.5f : 1.7f, p1 = op == UnaryOp::clamp ? 0.5f : -0.25f;
          unary(op, x.data() + offset, y.data() + offset, n, p0, p1);
          ref::unary(op, x.data() + offset, want.data(), n, p0, p1);
          BOOST_TEST_CONTEXT(unary_op_name(op) << " n=" << n << " offset=" << offset) {
            check_close(y.data() + offset, want.data(), n, 2e-6, abs_tol(op), "y");
            check_guards(y, n, offset);
          }
        }
  });
}

BOOST_AUTO_TEST_CASE(unary_backward_matches_reference) {
  for_each_simd_path([](SimdPath) {
    for (const auto& [op, domain] : all_unary)
      for (int64_t n : tail_sizes())
        for (int64_t offset : {0, 1}) {
          const auto x = domain == Domain::positive ? random_vector(n, 3 + n, 0.01, 10) : random_vector(n, 3 + n, -6, 6);
          const auto gy = random_vector(n, 5 + n);
          const float p0 = op == UnaryOp::clamp ? -0.5f : 1.7f, p1 = op == UnaryOp::clamp ? 0.5f : -0.25f;
          std::vector<float> y(size_t(n) + 1), want(size_t(n) + 1);
          ref::unary(op, x.data() + offset, y.data() + offset, n, p0, p1);
          auto gx = guarded_output(n);
          unary_backward(op, x.data() + offset, y.data() + offset, gy.data() + offset, gx.data() + offset, n, p0, p1);
          ref::unary_backward(op, x.data() + offset, y.data() + offset, gy.data() + offset, want.data(), n, p0, p1);
          BOOST_TEST_CONTEXT(unary_op_name(op) << " backward n=" << n << " offset=" << offset) {
            check_close(gx.data() + offset, want.data(), n, 1e-5, abs_tol(op), "gx");
            check_guards(gx, n, offset);
          }
        }
  });
}

BOOST_AUTO_TEST_CASE(special_values) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> x{0.0f, -0.0f, inf, -inf, nan, 1e-40f, -1e-40f, 88.7f, 89.0f, -87.5f, -103.0f, -120.0f,
                             1e30f, -1e30f, 20.0f, -20.0f, 1.0f};
  for_each_simd_path([&](SimdPath) {
    for (UnaryOp op : {UnaryOp::exp, UnaryOp::log, UnaryOp::tanh, UnaryOp::sigmoid, UnaryOp::gelu_erf,
                       UnaryOp::gelu_tanh, UnaryOp::relu, UnaryOp::sqrt, UnaryOp::clamp}) {
      std::vector<float> y(x.size()), want(x.size());
      unary(op, x.data(), y.data(), int64_t(x.size()), -1.0f, 1.0f);
      ref::unary(op, x.data(), want.data(), int64_t(x.size()), -1.0f, 1.0f);
      BOOST_TEST_CONTEXT(unary_op_name(op)) {
        // exp of a denormal result may differ by a denormal step; everything else closely.
        check_close(y.data(), want.data(), int64_t(x.size()), 3e-6, 3e-45, "special values");
      }
    }
  });
}

BOOST_AUTO_TEST_CASE(binary_all_stride_cases_exact) {
  for_each_simd_path([](SimdPath) {
    for (BinaryOp op : all_binary)
      for (int64_t sa : {0, 1})
        for (int64_t sb : {0, 1})
          for (int64_t n : tail_sizes())
            for (int64_t offset : {0, 1}) {
              const auto a = random_vector(n, 1 + n), b = random_vector(n, 2 + n, 0.5, 2);
              auto y = guarded_output(n);
              std::vector<float> want(size_t(n) + 1);
              binary(op, a.data() + offset, sa, b.data() + offset, sb, y.data() + offset, n);
              ref::binary(op, a.data() + offset, sa, b.data() + offset, sb, want.data(), n);
              BOOST_TEST_CONTEXT(binary_op_name(op) << " sa=" << sa << " sb=" << sb << " n=" << n
                                                    << " offset=" << offset) {
                check_close(y.data() + offset, want.data(), n, 0, 0, "y");  // IEEE ops: exact
                check_guards(y, n, offset);
              }
            }
  });
}

BOOST_AUTO_TEST_CASE(axpy_matches_reference) {
  for_each_simd_path([](SimdPath) {
    for (int64_t n : tail_sizes())
      for (int64_t offset : {0, 1}) {
        const auto x = random_vector(n, 9 + n);
        auto y = random_vector(n, 10 + n);
        auto want = y;
        axpy(0.3f, x.data() + offset, y.data() + offset, n);
        ref::axpy(0.3f, x.data() + offset, want.data() + offset, n);
        BOOST_TEST_CONTEXT("n=" << n << " offset=" << offset) {
          check_close(y.data(), want.data(), n + 1, 1e-6, 1e-7, "y");
        }
      }
  });
}

BOOST_AUTO_TEST_CASE(result_independent_of_thread_count) {
  const int saved = num_threads();
  const int64_t n = 100003;
  const auto x = random_vector(n, 4, -3, 3);
  std::vector<float> one(static_cast<size_t>(n)), two(static_cast<size_t>(n));
  set_num_threads(1);
  unary(UnaryOp::gelu_erf, x.data(), one.data(), n);
  set_num_threads(2);
  unary(UnaryOp::gelu_erf, x.data(), two.data(), n);
  set_num_threads(saved);
  BOOST_TEST(one == two);
}

// Max error of the vector math against double precision, over a dense sweep of each function's
// useful range. Prints the measured figures (they are quoted in kernels/vec_math.h and
// docs/PERFORMANCE.md) and fails above the stated bounds.
BOOST_AUTO_TEST_CASE(math_function_error_bounds) {
  struct Case {
    MathFn fn;
    const char* name;
    double low, high;
    bool log_spaced;
    double max_ulp;   // bound in units in the last place of the float result
    double (*exact)(double);
  };
  const Case cases[] = {
      {MathFn::exp, "exp", -87.0, 88.7, false, 2.0, [](double v) { return std::exp(v); }},
      {MathFn::log, "log", 1e-37, 3e38, true, 2.0, [](double v) { return std::log(v); }},
      {MathFn::log, "log near 1", 0.5, 2.0, false, 2.0, [](double v) { return std::log(v); }},
      {MathFn::tanh, "tanh", -10.0, 10.0, false, 2.0, [](double v) { return std::tanh(v); }},
      {MathFn::erf, "erf", -5.0, 5.0, false, 4.0, [](double v) { return std::erf(v); }},
      {MathFn::sigmoid, "sigmoid", -80.0, 80.0, false, 3.0, [](double v) { return 1.0 / (1.0 + std::exp(-v)); }},
  };
  const int64_t n = 1 << 20;
  std::vector<float> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
  for (SimdPath path : {SimdPath::avx2, SimdPath::avx512}) {
    if (!cpu_supports(path)) {
      BOOST_TEST_MESSAGE("skipping SIMD path " << simd_path_name(path) << ": this CPU lacks it");
      continue;
    }
    const SimdTable& table = path == SimdPath::avx2 ? avx2::table() : avx512::table();
    for (const Case& c : cases) {
      for (int64_t i = 0; i < n; ++i) {
        const double t = double(i) / double(n - 1);
        x[size_t(i)] = float(c.log_spaced ? c.low * std::pow(c.high / c.low, t) : c.low + (c.high - c.low) * t);
      }
      table.math(c.fn, x.data(), y.data(), n);
      double worst_ulp = 0, worst_rel = 0, at = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double want = c.exact(double(x[size_t(i)]));
        if (want == 0) continue;
        const float wf = float(want);
        const double ulp = double(std::nextafter(std::abs(wf), std::numeric_limits<float>::infinity())) - std::abs(wf);
        const double err = std::abs(double(y[size_t(i)]) - want);
        if (err / ulp > worst_ulp) worst_ulp = err / ulp, at = x[size_t(i)];
        worst_rel = std::max(worst_rel, err / std::abs(want));
      }
      BOOST_TEST_MESSAGE(simd_path_name(path) << " " << c.name << ": max error " << worst_ulp << " ulp (at x=" << at
                                              << "), max relative error " << worst_rel);
      BOOST_TEST(worst_ulp <= c.max_ulp, c.name << " on " << simd_path_name(path) << ": " << worst_ulp
                                                << " ulp at x=" << at);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
