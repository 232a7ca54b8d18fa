#include "kernels/packed_gemm.h"

#include <algorithm>

#include "kernels/cpu.h"
#include "kernels/gemm_ref.h"
#include "kernels/gemm_blocking.h"
#include "kernels/simd_table.h"
#include "kernels/threads.h"

namespace tessera::kernels {
namespace {

// Cache blocking, measured on the transformer shapes (bench/kernel_bench --gemm, 1 thread, CPU
// time; kc in 128..1280, nc in 192..768). The limit on kc is the A panel the micro-kernel keeps
// in the 48 KiB L1 across a block's NR-column panels:
// - row-major A (NN, NT: m = 6400, k <= 768): 8 rows x kc floats; kc = nc = 768 (the whole
//   product in one block) was best, 233-244 GFLOP/s against 190-226 at kc = 256, nc = 384: C is
//   written once and each A panel meets all of n (the n = 192 shapes suffered most).
// - A^T (TN: k = 6400): one 64-byte line per k step; kc = 160 (10 KiB), nc = 384 was best:
//   against kc = 256 the m = 192 shapes gained 5% (212 -> 223 GFLOP/s), the others stayed level;
//   kc = 128 lost 2-4%, 384 up to 10%, 1280 up to 20%, and nc = 768 up to 7% on 768x768.
// Those were measured on AMD Zen 5 (1 MiB L2). On an Intel Xeon with 2 MiB L2 (AMX generation,
// 2 threads, kernel_bench --gemm) the 768 x 768 products (NT, NN) ran at 287-291 GFLOP/s with
// nc = 768, below OpenBLAS's 297-305, and at 376-384 with nc = 384 (the other shapes level), so
// Intel gets nc = 384 for row-major A: the kc x nc block of B (2.25 MiB at 768 x 768) then fits its L2.
// Block counts are balanced: k = 1000 runs as 2 x 500, not 768 + 232.
struct Blocking {
  int64_t kc_max, nc_max;
};
constexpr Blocking transposed_a_blocking{160, 384};
Blocking rows_a_blocking() {
  static const Blocking blocking{768, cpu_features().vendor == "GenuineIntel" ? 384 : 768};
  return blocking;
}
// Below this many multiply-adds one thread does it all (not measured: gemm() sends products
// under 2^21 to OpenBLAS whenever it is loaded).
constexpr int64_t kThreadedProduct = int64_t(1) << 20;


// One thread's packing buffers.
struct PackBuffers {
  GrowingBuffer<float> a, b;
};
PackBuffers& pack_buffers() {
  thread_local PackBuffers buffers;
  return buffers;
}


}  // namespace

bool packed_gemm_available() { return simd_table() != nullptr; }

void packed_gemm(const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c) {
  if (s.m <= 0 || s.n <= 0) return;
  if (s.k <= 0 || alpha == 0.0f) return scale_c(s.m, s.n, beta, c, s.ldc);  // BLAS: A and B unread
  const SimdTable* simd = simd_table();
  if (simd == nullptr) return ref::gemm(s, alpha, a, b, beta, c);  // the scalar path
  const bool wide = simd_path() == SimdPath::avx512;
  const int64_t mr = wide ? kPackedMrAvx512 : kPackedMrAvx2, nr = wide ? kPackedNrAvx512 : kPackedNrAvx2;
  const int64_t threads = s.m * s.n * s.k < kThreadedProduct ? 1 : num_threads();
  const Split split = choose_split(s.m, s.n, threads, mr, nr);
  const Blocking blocking = s.trans_a ? transposed_a_blocking : rows_a_blocking();
  const int64_t kc = balanced(s.k, blocking.kc_max, 1);  // fixed by the shape alone: the order of the additions
  parallel_for(split.tr * split.tc, 1, [&](int64_t first, int64_t last) {
    for (int64_t t = first; t < last; ++t) {
      const int64_t i0 = (t / split.tc) * split.rows, j0 = (t % split.tc) * split.cols;
      if (i0 >= s.m || j0 >= s.n) continue;
      PackedGemmCall g;
      g.trans_a = s.trans_a, g.trans_b = s.trans_b;
      g.m = std::min(split.rows, s.m - i0), g.n = std::min(split.cols, s.n - j0), g.k = s.k;
      g.alpha = alpha, g.beta = beta;
      g.a = s.trans_a ? a + i0 : a + i0 * s.lda, g.lda = s.lda;
      g.b = s.trans_b ? b + j0 * s.ldb : b + j0, g.ldb = s.ldb;
      g.c = c + i0 * s.ldc + j0, g.ldc = s.ldc;
      g.kc = kc, g.nc = balanced(g.n, blocking.nc_max, nr);
      PackBuffers& buf = pack_buffers();
      g.a_pack = buf.a.grow(mr * kc);
      g.b_pack = buf.b.grow(kc * g.nc);
      simd->packed_gemm(g);
    }
  });
}

}  // namespace tessera::kernels
