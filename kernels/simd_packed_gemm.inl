// The per-ISA half of our packed GEMM (packed_gemm.h): packing of op(A) and op(B) into the
// layouts the micro-kernel streams, the MR x NR register-blocked micro-kernel, and the
// single-threaded blocking loops. The packing does the transposes, so one micro-kernel serves
// all four cases. Included by simd_kernels.inl after simd_layout.inl (uses transpose_8x8 and
// transpose).
#include "kernels/packed_gemm.h"
#include "kernels/vec.h"

namespace tessera::kernels::TESSERA_SIMD_NS {

constexpr int packed_mr = lanes == 16 ? packed_mr_avx512 : packed_mr_avx2;
constexpr int packed_nr = lanes == 16 ? packed_nr_avx512 : packed_nr_avx2;
constexpr int packed_nv = packed_nr / lanes;  // B vectors per k step

// op(B)[p0.., j0..] (kc x w, w <= NR) as one panel [kc][NR], columns w..NR zero, so the
// micro-kernel always runs whole vectors.
inline void pack_b_panel(bool tb, const float* b, int64_t ldb, int64_t kc, int64_t w, float* out) {
  constexpr int NR = packed_nr;
  if (!tb) {  // rows of B are rows of the panel
    for (int64_t p = 0; p < kc; ++p) {
      const float* src = b + p * ldb;
      float* dst = out + p * NR;
#pragma GCC unroll 4
      for (int v = 0; v < packed_nv; ++v) {
        const int64_t left = w - v * lanes;
        store(dst + v * lanes, left >= lanes ? load(src + v * lanes) : left > 0 ? load_part(src + v * lanes, left) : zero());
      }
    }
    return;
  }
  // op(B)[p][j] = b[j * ldb + p]: columns of the panel are rows of B, by register-tile transposes.
  transpose(b, w, kc, ldb, out, NR);
  if (w < NR)
    for (int64_t p = 0; p < kc; ++p)
      for (int64_t j = w; j < NR; ++j) out[p * NR + j] = 0.0f;
}

// op(A)[i0 .. i0+R, p0 ..] (R x kc) as [kc][MR]: one k step's R values are adjacent, for the
// broadcasts. Rows R..MR are left as they are (the micro-kernel for R rows never reads them).
template <int R>
inline void pack_a_panel(bool ta, const float* a, int64_t lda, int64_t kc, float* out) {
  constexpr int MR = packed_mr;
  if (ta) {  // op(A)[r][p] = a[p * lda + r]: R contiguous floats per step
    for (int64_t p = 0; p < kc; ++p)
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) out[p * MR + r] = a[p * lda + r];
    return;
  }
  int64_t p = 0;
  if constexpr (R == 8 && MR == 8)  // 8 rows by 8 steps at a time, by register transposes
    for (; p + 8 <= kc; p += 8) transpose_8x8(a + p, lda, out + p * MR, MR);
  for (; p < kc; ++p)
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) out[p * MR + r] = a[r * lda + p];
}

// C[R x up to NR] = alpha * (A panel x B panel) + beta * C; beta == 0 never reads C. n_left is
// the number of valid columns from c on (the panel's zero columns beyond it are not stored).
// alpha and beta are read through pointers after the k loop: passed as values they would hold
// two of the 32 registers through it, and GCC then spills a B vector (measured: 10% slower).
// Stores to C may alias them, so GCC cannot hoist the loads.
template <int R>
__attribute__((always_inline)) inline void packed_micro_kernel(int64_t kc, const float* ap, const float* bp,
                                                               const float* alpha_p, const float* beta_p, float* c,
                                                               int64_t ldc, int64_t n_left) {
  constexpr int MR = packed_mr, NR = packed_nr, V = packed_nv;
  F acc[R][V];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[r][v] = zero();
#pragma GCC unroll 2
  for (int64_t p = 0; p < kc; ++p) {
    F bv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) bv[v] = load(bp + p * NR + v * lanes);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const F av = set1(ap[p * MR + r]);  // folds into the FMA as an embedded broadcast
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[r][v] = fma(av, bv[v], acc[r][v]);
    }
  }
  const float alpha = *alpha_p, beta = *beta_p;
  const F al = set1(alpha), be = set1(beta);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      float* out = c + r * ldc + v * lanes;
      const int64_t w = n_left - v * lanes;
      if (w >= lanes)
        store(out, beta == 0.0f ? acc[r][v] * al : fma(load(out), be, acc[r][v] * al));
      else if (w > 0)
        store_part(out, beta == 0.0f ? acc[r][v] * al : fma(load_part(out, w), be, acc[r][v] * al), w);
    }
}

// Rows i0 .. i0+R of C against every panel of the packed B block.
template <int R>
inline void packed_row_panel(const PackedGemmCall& g, const float* a, int64_t kc, int64_t ncur, const float* beta,
                             float* c) {
  pack_a_panel<R>(g.trans_a, a, g.lda, kc, g.a_pack);
  for (int64_t j = 0; j < ncur; j += packed_nr)
    packed_micro_kernel<R>(kc, g.a_pack, g.b_pack + j * kc, &g.alpha, beta, c + j, g.ldc, ncur - j);
}

template <int R = packed_mr>
inline void packed_rows(int64_t rows, const PackedGemmCall& g, const float* a, int64_t kc, int64_t ncur,
                        const float* beta, float* c) {
  if constexpr (R > 0) {
    if (rows == R) return packed_row_panel<R>(g, a, kc, ncur, beta, c);
    return packed_rows<R - 1>(rows, g, a, kc, ncur, beta, c);
  }
}

// Goto's loops on one thread: n in blocks of nc, k in blocks of kc (op(B)[kc x nc] packed once,
// then read from L2 by every row panel), m in panels of MR rows (op(A)[MR x kc] packed into L1).
inline void packed_gemm(const PackedGemmCall& g) {
  constexpr int64_t MR = packed_mr, NR = packed_nr;
  for (int64_t jc = 0; jc < g.n; jc += g.nc) {
    const int64_t ncur = g.n - jc < g.nc ? g.n - jc : g.nc;
    for (int64_t pc = 0; pc < g.k; pc += g.kc) {
      const int64_t kc = g.k - pc < g.kc ? g.k - pc : g.kc;
      for (int64_t j = 0; j < ncur; j += NR) {
        const float* src = g.trans_b ? g.b + (jc + j) * g.ldb + pc : g.b + pc * g.ldb + jc + j;
        pack_b_panel(g.trans_b, src, g.ldb, kc, ncur - j < NR ? ncur - j : NR, g.b_pack + j * kc);
      }
      static const float one = 1.0f;
      const float* beta = pc == 0 ? &g.beta : &one;  // later k blocks add to what the first wrote
      for (int64_t i = 0; i < g.m; i += MR) {
        const float* a = g.trans_a ? g.a + pc * g.lda + i : g.a + i * g.lda + pc;
        packed_rows(g.m - i < MR ? g.m - i : MR, g, a, kc, ncur, beta, g.c + i * g.ldc + jc);
      }
    }
  }
}

}  // namespace tessera::kernels::TESSERA_SIMD_NS
