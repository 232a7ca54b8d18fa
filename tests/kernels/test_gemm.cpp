// GEMM against the naive triple loop: every transpose case, odd sizes, padded leading
// dimensions, alpha/beta, and strided batches (including attention's small per-head products).
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <limits>
#include <string>
#include <tuple>

#include "kernels/blas.h"
#include "kernels/gemm.h"
#include "kernels/gemm_ref.h"
#include "kernels/packed_gemm.h"
#include "kernels/simd_table.h"
#include "kernels/threads.h"
#include "tests/kernels/kernel_test_util.h"

using namespace tessera::kernels;
using tessera::kernels::testing::check_close;
using tessera::kernels::testing::gemm_shape;
using tessera::kernels::testing::rows_a;
using tessera::kernels::testing::rows_b;
using tessera::kernels::testing::for_each_simd_path;
using tessera::kernels::testing::random_vector;

namespace {


template <class T>
void check_one(const GemmShape& s, T alpha, T beta, uint64_t seed) {
  const auto a = random_vector<T>(rows_a(s) * s.lda, seed);
  const auto b = random_vector<T>(rows_b(s) * s.ldb, seed + 1);
  auto c = random_vector<T>(s.m * s.ldc, seed + 2);
  auto want = c;
  gemm(s, alpha, a.data(), b.data(), beta, c.data());
  ref::gemm(s, alpha, a.data(), b.data(), beta, want.data());
  const double tol = sizeof(T) == 4 ? 2e-5 * double(s.k + 1) : 1e-12 * double(s.k + 1);
  BOOST_TEST_CONTEXT("m=" << s.m << " n=" << s.n << " k=" << s.k << " ta=" << s.trans_a << " tb=" << s.trans_b
                          << " alpha=" << alpha << " beta=" << beta) {
    check_close(c.data(), want.data(), int64_t(c.size()), tol, tol, "C");
  }
}

// Our packed GEMM on the current SIMD path against the reference: C starts random (or NaN
// when beta == 0, which must never be read), every pointer optionally shifted by one float off
// the 64-byte alignment of the vectors, and padding beyond n in each row of C must stay as it was.
void check_packed(const GemmShape& s, float alpha, float beta, bool unaligned, uint64_t seed) {
  const int64_t shift = unaligned ? 1 : 0;
  const auto a = random_vector<float>(std::max<int64_t>(1, rows_a(s) * s.lda), seed);
  const auto b = random_vector<float>(std::max<int64_t>(1, rows_b(s) * s.ldb), seed + 1);
  auto c = random_vector<float>(std::max<int64_t>(1, s.m * s.ldc), seed + 2);
  if (beta == 0.0f)
    for (int64_t i = 0; i < s.m; ++i)
      for (int64_t j = 0; j < s.n; ++j) c[size_t(i * s.ldc + j)] = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> a2(a.size() + 1), b2(b.size() + 1), c2(c.size() + 1);
  std::copy(a.begin(), a.end(), a2.begin() + shift);
  std::copy(b.begin(), b.end(), b2.begin() + shift);
  std::copy(c.begin(), c.end(), c2.begin() + shift);
  auto want = c;
  packed_gemm(s, alpha, a2.data() + shift, b2.data() + shift, beta, c2.data() + shift);
  ref::gemm(s, alpha, a.data(), b.data(), beta, want.data());
  const double tol = 1e-6 * double(s.k + 1);
  BOOST_TEST_CONTEXT("m=" << s.m << " n=" << s.n << " k=" << s.k << " ta=" << s.trans_a << " tb=" << s.trans_b
                          << " lda=" << s.lda << " ldb=" << s.ldb << " ldc=" << s.ldc << " alpha=" << alpha
                          << " beta=" << beta << " unaligned=" << unaligned) {
    check_close(c2.data() + shift, want.data(), int64_t(want.size()), tol, tol, "C");
  }
}

// The paths that have our packed GEMM (not scalar), each in turn.
template <class F>
void for_each_packed_path(F&& body) {
  for_each_simd_path([&](SimdPath p) {
    if (p != SimdPath::scalar) body(p);
  });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(gemm_kernel)

BOOST_AUTO_TEST_CASE(packed_small_sizes_every_case) {
  // Every transpose case on the tail sizes: row panels of 1..MR-1 rows, column panels of
  // 1..NR-1 columns (zero-padded B), k of one step; alpha/beta mixes, padded leading dimensions.
  for_each_packed_path([](SimdPath) {
    uint64_t seed = 1000;
    const int64_t sizes[] = {1, 7, 15, 16, 17, 31, 33};
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (int64_t m : sizes)
          for (int64_t n : sizes)
            for (int64_t k : {int64_t(1), int64_t(17), int64_t(33)}) {
              const bool odd = (m + n + k) % 2 != 0;
              check_packed(gemm_shape(ta, tb, m, n, k, odd ? 3 : 0), odd ? -0.5f : 1.0f, odd ? 1.5f : 0.0f, odd, seed++);
            }
  });
}

BOOST_AUTO_TEST_CASE(packed_crosses_block_sizes) {
  // k > kc (768 with row-major A, 160 with A^T: several k blocks, the later ones adding to C),
  // n > nc (768 / 384: several B blocks), m over many row panels, tails everywhere; 1 and 2 threads.
  const int saved = num_threads();
  for_each_packed_path([](SimdPath) {
    uint64_t seed = 2000;
    for (int t : {1, 2}) {
      set_num_threads(t);
      for (bool ta : {false, true})
        for (bool tb : {false, true})
          for (auto [m, n, k] : {std::tuple{100, 33, 300}, {131, 401, 17}, {9, 1000, 600}, {257, 49, 1000},
                                 {200, 450, 513}}) {
            check_packed(gemm_shape(ta, tb, m, n, k, 0), 1.0f, 0.0f, false, seed++);
            check_packed(gemm_shape(ta, tb, m, n, k, 5), 0.75f, -1.0f, true, seed++);
          }
    }
  });
  set_num_threads(saved);
}

BOOST_AUTO_TEST_CASE(packed_degenerate_sizes) {
  // m or n == 0 touch nothing; k == 0 or alpha == 0 scale C by beta without reading A or B
  // (beta == 0 writes zeros over NaN).
  for_each_packed_path([](SimdPath) {
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        for (auto [m, n, k] : {std::tuple{0, 5, 3}, {5, 0, 3}, {0, 0, 0}})
          check_packed(gemm_shape(ta, tb, m, n, k, 1), 1.0f, 0.5f, false, 7);
        check_packed(gemm_shape(ta, tb, 6, 35, 0, 2), 1.0f, 0.5f, false, 8);
        check_packed(gemm_shape(ta, tb, 6, 35, 0, 2), 1.0f, 0.0f, false, 9);
        check_packed(gemm_shape(ta, tb, 6, 35, 20, 2), 0.0f, 2.0f, false, 10);
      }
  });
}

BOOST_AUTO_TEST_CASE(packed_same_bits_on_any_thread_count) {
  // Threads get rectangles of C (rows or columns, by shape) and never split k, so C must be
  // bitwise the same on 1, 2 and 3 threads; shapes of each kind of cut and the transformer's.
  const int saved = num_threads();
  for_each_packed_path([](SimdPath) {
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (auto [m, n, k] : {std::tuple{640, 192, 576}, {192, 192, 1600}, {40, 900, 300}, {333, 77, 700}}) {
          const GemmShape s = gemm_shape(ta, tb, m, n, k, 0);
          const auto a = random_vector<float>(rows_a(s) * s.lda, 41), b = random_vector<float>(rows_b(s) * s.ldb, 42);
          std::vector<std::vector<float>> results;
          for (int t : {1, 2, 3}) {
            set_num_threads(t);
            auto c = random_vector<float>(s.m * s.ldc, 43);
            packed_gemm(s, 1.0f, a.data(), b.data(), 0.5f, c.data());
            results.push_back(c);
          }
          BOOST_TEST_CONTEXT("m=" << m << " n=" << n << " k=" << k << " ta=" << ta << " tb=" << tb) {
            BOOST_TEST(std::memcmp(results[0].data(), results[1].data(), results[0].size() * sizeof(float)) == 0);
            BOOST_TEST(std::memcmp(results[0].data(), results[2].data(), results[0].size() * sizeof(float)) == 0);
          }
        }
  });
  set_num_threads(saved);
}

BOOST_AUTO_TEST_CASE(dispatched_large_product_every_path) {
  // gemm() on a Linear-sized product on every path, scalar included (where ours is unavailable
  // and OpenBLAS or the reference runs); the backend it names for the shape must exist.
  for_each_simd_path([](SimdPath p) {
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const GemmShape s = gemm_shape(ta, tb, 200, 192, 96, 1);
        const std::string backend = gemm_backend_for(s);
        BOOST_TEST_MESSAGE(simd_path_name(p) << " ta=" << ta << " tb=" << tb << ": " << backend);
        if (p == SimdPath::scalar) BOOST_TEST(backend.find("ours") == std::string::npos);
        BOOST_TEST(packed_gemm_available() == (p != SimdPath::scalar));
        check_one<float>(s, 1.0f, 0.0f, 90);
        check_one<float>(s, 0.5f, 2.0f, 91);
        check_packed(s, 0.5f, 2.0f, true, 92);  // the reference on the scalar path
      }
  });
}

BOOST_AUTO_TEST_CASE(backend_is_named) {
  const std::string name = gemm_backend_name();
  BOOST_TEST_MESSAGE("gemm backend: " << name);
  BOOST_TEST(!name.empty());
  // On a CPU with AVX-512 OpenBLAS must run its AVX-512 kernels, not the SSE3 fallback.
  if (blas::openblas() && cpu_supports(SimdPath::avx512) && !std::getenv("TESSERA_OPENBLAS_CORETYPE"))
    BOOST_TEST(std::string(blas::openblas_core()) == "SkylakeX");
}

BOOST_AUTO_TEST_CASE(all_transposes_odd_sizes_alpha_beta) {
  uint64_t seed = 1;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (auto [m, n, k] : {std::tuple{1, 1, 1}, {7, 5, 3}, {17, 33, 15}, {64, 48, 31}, {129, 65, 70}})
        for (int64_t pad : {0, 3}) {
          check_one<float>(gemm_shape(ta, tb, m, n, k, pad), 1.0f, 0.0f, seed++);
          check_one<float>(gemm_shape(ta, tb, m, n, k, pad), -0.5f, 1.5f, seed++);
          check_one<double>(gemm_shape(ta, tb, m, n, k, pad), 0.75, -2.0, seed++);
        }
}

BOOST_AUTO_TEST_CASE(k_zero_scales_c_by_beta) {
  GemmShape s = gemm_shape(false, false, 3, 4, 0, 0);
  s.lda = 1;
  std::vector<float> a(3), b(4), c(12, 2.0f);
  gemm(s, 1.0f, a.data(), b.data(), 0.5f, c.data());
  for (float v : c) BOOST_TEST(v == 1.0f);
}

BOOST_AUTO_TEST_CASE(transformer_shape_threads) {
  // Big enough that OpenBLAS splits it over threads; the result must not depend on that split.
  const int saved = num_threads();
  for (int t : {1, 2}) {
    set_num_threads(t);
    check_one<float>(gemm_shape(false, true, 300, 192, 96, 0), 1.0f, 0.0f, 77);
    check_one<float>(gemm_shape(true, false, 96, 192, 300, 0), 1.0f, 1.0f, 78);
  }
  set_num_threads(saved);
}

BOOST_AUTO_TEST_CASE(batched_small_and_large) {
  // (batch, m, n, k): attention's per-head products run our small kernel, one per thread, on
  // every SIMD path (odd m and n hit its row and column tails, n = 100 two column blocks);
  // big ones go to OpenBLAS in sequence.
  for_each_simd_path([](SimdPath) {
  for (auto [batch, m, n, k] : {std::tuple{6, 50, 50, 64}, {5, 50, 64, 50}, {3, 7, 9, 5}, {4, 1, 1, 1},
                                {3, 13, 100, 17}, {2, 33, 31, 300}, {2, 130, 140, 150}})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const GemmShape s = gemm_shape(ta, tb, m, n, k, 1);
        const int64_t sa = rows_a(s) * s.lda, sb = rows_b(s) * s.ldb, sc = s.m * s.ldc;
        const auto a = random_vector<float>(batch * sa, 11);
        const auto b = random_vector<float>(batch * sb, 12);
        auto c = random_vector<float>(batch * sc, 13);
        auto want = c;
        gemm_batched(s, batch, 0.5f, a.data(), sa, b.data(), sb, 2.0f, c.data(), sc);
        for (int64_t i = 0; i < batch; ++i)
          ref::gemm(s, 0.5f, a.data() + i * sa, b.data() + i * sb, 2.0f, want.data() + i * sc);
        BOOST_TEST_CONTEXT("batch=" << batch << " m=" << m << " n=" << n << " k=" << k << " ta=" << ta
                                    << " tb=" << tb) {
          check_close(c.data(), want.data(), int64_t(c.size()), 1e-4, 1e-4, "C");
        }
      }
  });
}

BOOST_AUTO_TEST_CASE(small_kernel_every_case_directly) {
  // gemm() sends only some shapes to our small kernel; here it runs every transpose case, with
  // and without leading-dimension padding, on each SIMD table the CPU has.
  for (SimdPath path : {SimdPath::avx2, SimdPath::avx512}) {
    if (!cpu_supports(path)) {
      BOOST_TEST_MESSAGE("skipping SIMD path " << simd_path_name(path) << ": this CPU lacks it");
      continue;
    }
    const SimdTable& t = path == SimdPath::avx2 ? avx2::table() : avx512::table();
    uint64_t seed = 500;
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (auto [m, n, k] : {std::tuple{50, 50, 64}, {50, 64, 50}, {1, 1, 1}, {7, 33, 5}, {13, 100, 17}, {6, 16, 3}})
          for (int64_t pad : {0, 5})
            for (float beta : {0.0f, 0.5f}) {
              const GemmShape s = gemm_shape(ta, tb, m, n, k, pad);
              const auto a = random_vector<float>(rows_a(s) * s.lda, seed++);
              const auto b = random_vector<float>(rows_b(s) * s.ldb, seed++);
              auto c = random_vector<float>(s.m * s.ldc, seed++);
              auto want = c;
              t.small_gemm(ta, tb, m, n, k, 1.5f, a.data(), s.lda, b.data(), s.ldb, beta, c.data(), s.ldc);
              ref::gemm(s, 1.5f, a.data(), b.data(), beta, want.data());
              BOOST_TEST_CONTEXT(simd_path_name(path) << " m=" << m << " n=" << n << " k=" << k << " ta=" << ta
                                                      << " tb=" << tb << " pad=" << pad << " beta=" << beta) {
                check_close(c.data(), want.data(), int64_t(c.size()), 1e-5, 1e-5, "C");  // padding untouched too
              }
            }
  }
}

BOOST_AUTO_TEST_CASE(batched_beta_zero_ignores_nan_in_c) {
  // BLAS semantics: with beta = 0, C is written, never read (it may hold garbage).
  for_each_simd_path([](SimdPath) {
    const GemmShape s = gemm_shape(false, true, 50, 50, 64, 0);
    const int64_t batch = 4, sa = 50 * 64, sc = 50 * 50;
    const auto a = random_vector<float>(batch * sa, 31), b = random_vector<float>(batch * sa, 32);
    std::vector<float> c(size_t(batch * sc), std::numeric_limits<float>::quiet_NaN()), want(c.size(), 0.0f);
    gemm_batched(s, batch, 1.0f, a.data(), sa, b.data(), sa, 0.0f, c.data(), sc);
    for (int64_t i = 0; i < batch; ++i) ref::gemm(s, 1.0f, a.data() + i * sa, b.data() + i * sa, 0.0f, want.data() + i * sc);
    check_close(c.data(), want.data(), int64_t(c.size()), 1e-4, 1e-4, "C");
  });
}

BOOST_AUTO_TEST_CASE(batched_shared_operand_and_output) {
  // stride 0: one B for every product; one C accumulated over the batch (beta = 1).
  const GemmShape s = gemm_shape(false, false, 9, 11, 13, 0);
  const int64_t batch = 4, sa = 9 * 13;
  const auto a = random_vector<float>(batch * sa, 21);
  const auto b = random_vector<float>(13 * 11, 22);
  auto c = random_vector<float>(9 * 11, 23);
  auto want = c;
  gemm_batched(s, batch, 1.0f, a.data(), sa, b.data(), 0, 1.0f, c.data(), 0);
  for (int64_t i = 0; i < batch; ++i) ref::gemm(s, 1.0f, a.data() + i * sa, b.data(), 1.0f, want.data());
  check_close(c.data(), want.data(), int64_t(c.size()), 1e-4, 1e-4, "C");
}

BOOST_AUTO_TEST_SUITE_END()
