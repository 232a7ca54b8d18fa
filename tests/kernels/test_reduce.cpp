// Row reductions and softmax: every SIMD path against the scalar reference, for row lengths at
// the tail sizes, unaligned rows, NaN and fully masked rows, and thread-count independence.
#include <boost/test/unit_test.hpp>

#include <limits>

#include "kernels/reduce.h"
#include "kernels/reduce_ref.h"
#include "kernels/threads.h"
#include "tests/kernels/kernel_test_util.h"

using namespace tessera::kernels;
using namespace tessera::kernels::testing;

namespace {
constexpr int64_t rows = 3;
}

BOOST_AUTO_TEST_SUITE(reduce_kernels)

BOOST_AUTO_TEST_CASE(sum_max_var_match_reference) {
  for_each_simd_path([](SimdPath) {
    for (int64_t cols : tail_sizes())
      for (int64_t offset : {0, 1}) {
        const auto x = random_vector(rows * cols, 31 + cols, -2, 3);
        const float* in = x.data() + offset;
        std::vector<float> got(rows), want(rows), mean(rows), want_mean(rows);
        std::vector<int64_t> at(rows), want_at(rows);
        BOOST_TEST_CONTEXT("cols=" << cols << " offset=" << offset) {
          sum_rows(in, rows, cols, got.data());
          ref::sum_rows(in, rows, cols, want.data());
          check_close(got.data(), want.data(), rows, 1e-6, 1e-6 * double(cols), "sum");
          max_rows(in, rows, cols, got.data(), at.data());
          ref::max_rows(in, rows, cols, want.data(), want_at.data());
          check_close(got.data(), want.data(), rows, 0, 0, "max");
          BOOST_TEST(at == want_at);
          for (int64_t correction : {0, 1}) {
            var_rows(in, rows, cols, correction, got.data(), mean.data());
            ref::var_rows(in, rows, cols, correction, want.data(), want_mean.data());
            check_close(got.data(), want.data(), rows, 1e-5, 1e-7, "var");
            check_close(mean.data(), want_mean.data(), rows, 1e-6, 1e-6, "mean");
          }
        }
      }
  });
}

BOOST_AUTO_TEST_CASE(max_with_nan_and_ties) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for_each_simd_path([&](SimdPath) {
    for (int64_t cols : {1, 17, 33, 1000}) {
      std::vector<float> x(size_t(2 * cols), 1.0f);
      x[size_t(cols / 2)] = nan;             // row 0: first NaN wins
      x[size_t(cols + cols - 1)] = 5.0f;     // row 1: tie at the end, first index wins
      if (cols > 2) x[size_t(cols + 1)] = 5.0f;
      std::vector<float> got(2), want(2);
      std::vector<int64_t> at(2), want_at(2);
      max_rows(x.data(), 2, cols, got.data(), at.data());
      ref::max_rows(x.data(), 2, cols, want.data(), want_at.data());
      BOOST_TEST_CONTEXT("cols=" << cols) {
        check_close(got.data(), want.data(), 2, 0, 0, "max");
        BOOST_TEST(at == want_at);
      }
    }
  });
}

BOOST_AUTO_TEST_CASE(softmax_family_matches_reference) {
  for_each_simd_path([](SimdPath) {
    for (int64_t cols : tail_sizes())
      for (int64_t offset : {0, 1}) {
        const int64_t n = rows * cols;
        const auto x = random_vector(n, 41 + cols, -8, 8);
        const auto gy = random_vector(n, 42 + cols);
        std::vector<float> y(size_t(n) + 1), want(size_t(n) + 1), gx(size_t(n) + 1), want_gx(size_t(n) + 1);
        const float* in = x.data() + offset;
        BOOST_TEST_CONTEXT("cols=" << cols << " offset=" << offset) {
          softmax_rows(in, rows, cols, y.data() + offset);
          ref::softmax_rows(in, rows, cols, want.data());
          check_close(y.data() + offset, want.data(), n, 1e-5, 1e-9, "softmax");
          softmax_backward_rows(want.data(), gy.data() + offset, rows, cols, gx.data() + offset);
          ref::softmax_backward_rows(want.data(), gy.data() + offset, rows, cols, want_gx.data());
          check_close(gx.data() + offset, want_gx.data(), n, 1e-5, 1e-7, "softmax backward");

          log_softmax_rows(in, rows, cols, y.data() + offset);
          ref::log_softmax_rows(in, rows, cols, want.data());
          check_close(y.data() + offset, want.data(), n, 1e-5, 1e-5, "log_softmax");
          log_softmax_backward_rows(want.data(), gy.data() + offset, rows, cols, gx.data() + offset);
          ref::log_softmax_backward_rows(want.data(), gy.data() + offset, rows, cols, want_gx.data());
          check_close(gx.data() + offset, want_gx.data(), n, 1e-5, 1e-5, "log_softmax backward");
        }
      }
  });
}

BOOST_AUTO_TEST_CASE(softmax_masked_and_extreme_rows) {
  const float inf = std::numeric_limits<float>::infinity();
  // row 0 fully masked, row 1 partly masked, row 2 with a huge spread
  const std::vector<float> x{-inf, -inf, -inf, -inf, -inf, 2.0f, -inf, 1.0f, 0.0f, 1e4f, -1e4f, 50.0f, 0.0f, -3.0f, 3.0f};
  for_each_simd_path([&](SimdPath) {
    std::vector<float> y(15), want(15);
    softmax_rows(x.data(), 3, 5, y.data());
    ref::softmax_rows(x.data(), 3, 5, want.data());
    check_close(y.data(), want.data(), 15, 1e-6, 1e-30, "softmax");
    log_softmax_rows(x.data(), 3, 5, y.data());
    ref::log_softmax_rows(x.data(), 3, 5, want.data());
    check_close(y.data(), want.data(), 15, 1e-6, 1e-6, "log_softmax");
  });
}

BOOST_AUTO_TEST_CASE(results_independent_of_thread_count) {
  const int saved = num_threads();
  const int64_t r = 500, c = 333;
  const auto x = random_vector(r * c, 5);
  std::vector<float> s1(r), s2(r), y1(size_t(r * c)), y2(size_t(r * c));
  set_num_threads(1);
  sum_rows(x.data(), r, c, s1.data());
  softmax_rows(x.data(), r, c, y1.data());
  set_num_threads(2);
  sum_rows(x.data(), r, c, s2.data());
  softmax_rows(x.data(), r, c, y2.data());
  set_num_threads(saved);
  BOOST_TEST(s1 == s2);
  BOOST_TEST(y1 == y2);
}

BOOST_AUTO_TEST_SUITE_END()
