// The bf16 GEMM (kernels/bf16_gemm.h) on every path this CPU has (amx, avx512bf16, convert)
// against the scalar reference that rounds the operands to bf16 and sums in double: transpose
// cases, the tails of tiles, panels and k steps, padded leading dimensions, alpha/beta, k and n
// crossing the cache blocks, thread counts; and the matrix-product precision switch of gemm().
// The tolerance is fp32 summation error: operands left unrounded (or rounded differently) miss
// it by orders of magnitude.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "kernels/bf16.h"
#include "kernels/bf16_gemm.h"
#include "kernels/bf16_gemm_ref.h"
#include "kernels/gemm.h"
#include "kernels/gemm_ref.h"
#include "kernels/threads.h"
#include "tests/kernels/kernel_test_util.h"

using namespace tessera::kernels;
using tessera::kernels::testing::check_close;
using tessera::kernels::testing::gemm_shape;
using tessera::kernels::testing::rows_a;
using tessera::kernels::testing::rows_b;
using tessera::kernels::testing::random_vector;

namespace {


// Runs body() on every bf16 path this CPU has, restoring the path in use afterwards.
template <class F>
void for_each_bf16_path(F&& body) {
  const Bf16Path saved = bf16_path();
  for (Bf16Path p : {Bf16Path::convert, Bf16Path::avx512bf16, Bf16Path::amx}) {
    if (!cpu_supports(p)) {
      BOOST_TEST_MESSAGE("skipping bf16 path " << bf16_path_name(p) << ": this CPU (or OS) lacks it");
      continue;
    }
    set_bf16_path(p);
    BOOST_TEST_CONTEXT("bf16 path " << bf16_path_name(p)) { body(p); }
  }
  set_bf16_path(saved);
}

// gemm_bf16 against the reference. C starts random (NaN where beta == 0: it must never be read);
// the padding beyond n in each row of C must keep its values.
void check_bf16(const GemmShape& s, float alpha, float beta, uint64_t seed) {
  const auto a = random_vector<float>(std::max<int64_t>(1, rows_a(s) * s.lda), seed);
  const auto b = random_vector<float>(std::max<int64_t>(1, rows_b(s) * s.ldb), seed + 1);
  auto c = random_vector<float>(std::max<int64_t>(1, s.m * s.ldc), seed + 2);
  if (beta == 0.0f)
    for (int64_t i = 0; i < s.m; ++i)
      for (int64_t j = 0; j < s.n; ++j) c[size_t(i * s.ldc + j)] = std::numeric_limits<float>::quiet_NaN();
  auto want = c;
  gemm_bf16(s, alpha, a.data(), b.data(), beta, c.data());
  ref::gemm_bf16(s, alpha, a.data(), b.data(), beta, want.data());
  const double tol = 1e-6 * double(s.k + 1);  // fp32 sums of k products of magnitude <= 1
  BOOST_TEST_CONTEXT("m=" << s.m << " n=" << s.n << " k=" << s.k << " ta=" << s.trans_a << " tb=" << s.trans_b
                          << " lda=" << s.lda << " ldb=" << s.ldb << " ldc=" << s.ldc << " alpha=" << alpha
                          << " beta=" << beta) {
    check_close(c.data(), want.data(), int64_t(want.size()), tol, tol, "C");
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(bf16_gemm)

BOOST_AUTO_TEST_CASE(rounds_to_nearest_even) {
  auto bits = [](float x) {
    uint32_t u;
    std::memcpy(&u, &x, 4);
    return u;
  };
  auto from = [](uint32_t u) {
    float x;
    std::memcpy(&x, &u, 4);
    return x;
  };
  BOOST_TEST(round_to_bf16(1.0f) == 1.0f);
  BOOST_TEST(round_to_bf16(-2.5f) == -2.5f);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1).
  BOOST_TEST(round_to_bf16(1.0f + std::ldexp(1.0f, -8)) == 1.0f);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even).
  BOOST_TEST(round_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)) == 1.0f + std::ldexp(1.0f, -6));
  // Just above halfway rounds up, just below down.
  BOOST_TEST(round_to_bf16(from(bits(1.0f) + 0x8001)) == from(bits(1.0f) + 0x10000));
  BOOST_TEST(round_to_bf16(from(bits(1.0f) + 0x7fff)) == 1.0f);
  BOOST_TEST(std::isnan(round_to_bf16(std::numeric_limits<float>::quiet_NaN())));
  BOOST_TEST(std::isnan(from_bf16(to_bf16(from(0x7f800001)))));  // a NaN whose payload is in the low bits
  BOOST_TEST(round_to_bf16(std::numeric_limits<float>::max()) == std::numeric_limits<float>::infinity());
  BOOST_TEST(round_to_bf16(-std::numeric_limits<float>::infinity()) == -std::numeric_limits<float>::infinity());
}

BOOST_AUTO_TEST_CASE(tails_every_transpose_case) {
  // Sizes around the 16-row tiles, 32-row blocks, 16-column panels, the vdpbf16ps kernel's 8 rows
  // and 48 columns, and the 32-wide k steps.
  for_each_bf16_path([](Bf16Path) {
    uint64_t seed = 1;
    const int64_t sizes[] = {1, 7, 9, 16, 17, 33, 49};
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (int64_t m : sizes)
          for (int64_t n : sizes)
            for (int64_t k : {int64_t(1), int64_t(31), int64_t(32), int64_t(65)}) {
              const bool odd = (m + n + k) % 2 != 0;
              check_bf16(gemm_shape(ta, tb, m, n, k, odd ? 3 : 0), odd ? -0.5f : 1.0f, odd ? 1.5f : 0.0f, seed++);
            }
  });
}

BOOST_AUTO_TEST_CASE(crosses_cache_blocks_and_threads) {
  // k = 1100 is three k blocks (later ones add to C), n = 1100 three column blocks; on 1 and 2
  // threads C is bitwise the same (k is never split). The convert path hands the rounded operands
  // to the fp32 dispatcher, so it promises that only where our packed GEMM takes the shape: on
  // AVX2, A^T products go to OpenBLAS, whose threads do not keep the bits.
  for_each_bf16_path([](Bf16Path path) {
    const int saved_threads = num_threads();
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const GemmShape s = gemm_shape(ta, tb, 70, 1100, 1100, 1);
        check_bf16(s, 0.75f, 0.5f, 77);
        check_bf16(s, 1.0f, 1.0f, 78);  // whole AMX blocks load C into the tiles and store them back
        check_bf16(s, 1.0f, 0.0f, 79);
        const auto a = random_vector<float>(rows_a(s) * s.lda, 5), b = random_vector<float>(rows_b(s) * s.ldb, 6);
        std::vector<float> c1(size_t(s.m * s.ldc)), c2(c1.size());
        set_num_threads(1);
        gemm_bf16(s, 1.0f, a.data(), b.data(), 0.0f, c1.data());
        set_num_threads(2);
        gemm_bf16(s, 1.0f, a.data(), b.data(), 0.0f, c2.data());
        if (path == Bf16Path::convert && std::string(gemm_backend_for(s)) != "ours (packed)") continue;
        BOOST_TEST(std::memcmp(c1.data(), c2.data(), c1.size() * sizeof(float)) == 0, "ta=" << ta << " tb=" << tb);
      }
    set_num_threads(saved_threads);
  });
}

BOOST_AUTO_TEST_CASE(degenerate_sizes) {
  for_each_bf16_path([](Bf16Path) {
    // k = 0 or alpha = 0: C = beta C, A and B unread (null here).
    std::vector<float> c{1, 2, 3, 4};
    gemm_bf16(gemm_shape(false, false, 2, 2, 0, 0), 1.0f, nullptr, nullptr, 0.5f, c.data());
    BOOST_TEST(c == (std::vector<float>{0.5f, 1, 1.5f, 2}), boost::test_tools::per_element());
    gemm_bf16(gemm_shape(false, false, 2, 2, 3, 0), 0.0f, nullptr, nullptr, 0.0f, c.data());
    BOOST_TEST(c == (std::vector<float>{0, 0, 0, 0}), boost::test_tools::per_element());
    gemm_bf16(gemm_shape(false, false, 0, 2, 3, 0), 1.0f, nullptr, nullptr, 0.0f, nullptr);  // m = 0: nothing
  });
}

BOOST_AUTO_TEST_CASE(precision_switch_routes_gemm_and_batches) {
  // In bf16 precision gemm() and gemm_batched() give the bf16 reference (and differ from fp32 by
  // the rounding of the operands); back in fp32 they give the fp32 reference.
  const GemmShape s = gemm_shape(false, true, 50, 50, 64, 0);  // attention's Q K^T per head
  const int64_t batch = 6, sa = s.m * s.lda, sb = s.n * s.ldb, sc = s.m * s.ldc;
  const auto a = random_vector<float>(batch * sa, 11), b = random_vector<float>(batch * sb, 12);
  std::vector<float> got(size_t(batch * sc)), want16(got.size()), want32(got.size());
  for (int64_t i = 0; i < batch; ++i) {
    ref::gemm_bf16(s, 1.0f, a.data() + i * sa, b.data() + i * sb, 0.0f, want16.data() + i * sc);
    ref::gemm(s, 1.0f, a.data() + i * sa, b.data() + i * sb, 0.0f, want32.data() + i * sc);
  }
  BOOST_REQUIRE(matmul_precision() == MatmulPrecision::f32);
  set_matmul_precision(MatmulPrecision::bf16);
  for_each_bf16_path([&](Bf16Path) {
    gemm_batched(s, batch, 1.0f, a.data(), sa, b.data(), sb, 0.0f, got.data(), sc);
    check_close(got.data(), want16.data(), int64_t(got.size()), 1e-4, 1e-4, "batched bf16");
    gemm(s, 1.0f, a.data(), b.data(), 0.0f, got.data());
    check_close(got.data(), want16.data(), sc, 1e-4, 1e-4, "gemm bf16");
  });
  double far = 0;  // bf16 operands move the sums by ~1e-2: the two references must differ
  for (size_t i = 0; i < got.size(); ++i) far = std::max(far, double(std::abs(want16[i] - want32[i])));
  BOOST_TEST(far > 1e-3);
  set_matmul_precision(MatmulPrecision::f32);
  gemm_batched(s, batch, 1.0f, a.data(), sa, b.data(), sb, 0.0f, got.data(), sc);
  check_close(got.data(), want32.data(), int64_t(got.size()), 1e-4, 1e-4, "batched fp32");
}

BOOST_AUTO_TEST_CASE(names_and_parsing) {
  for (Bf16Path p : {Bf16Path::convert, Bf16Path::avx512bf16, Bf16Path::amx})
    BOOST_TEST(int(parse_bf16_path(bf16_path_name(p))) == int(p));
  BOOST_CHECK_THROW(parse_bf16_path("amx2"), std::invalid_argument);
  BOOST_TEST(cpu_supports(Bf16Path::convert));
  BOOST_TEST(cpu_supports(best_bf16_path()));
  BOOST_TEST(int(parse_matmul_precision("bf16")) == int(MatmulPrecision::bf16));
  BOOST_CHECK_THROW(parse_matmul_precision("fp16"), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()
