// The per-ISA half of our packed GEMM (packed_gemm.h): packing of op(A) and op(B) into the
// layouts the micro-kernel streams, the MR x NR register-blocked micro-kernel, and the
// single-threaded blocking loops. The packing does the transposes (op(B) = B^T, tails), so one
// micro-kernel serves all four cases; operands already in a layout it can stream are read in
// place. Included by simd_kernels.inl after simd_layout.inl (uses its transpose_tiles).
#include "kernels/packed_gemm.h"
#include "kernels/vec.h"

#include <type_traits>

namespace tessera::kernels::TESSERA_SIMD_NS {

constexpr int kPackedMr = kLanes == 16 ? kPackedMrAvx512 : kPackedMrAvx2;
constexpr int kPackedNr = kLanes == 16 ? kPackedNrAvx512 : kPackedNrAvx2;
constexpr int kPackedNv = kPackedNr / kLanes;  // B vectors per k step

// op(B)[p0.., j0..] (kc x w, w <= NR) as one panel [kc][NR], columns w..NR zero, so the
// micro-kernel always runs whole vectors.
inline void pack_b_panel(bool tb, const float* b, int64_t ldb, int64_t kc, int64_t w, float* out) {
  constexpr int kNr = kPackedNr;
  if (!tb) {  // rows of B are rows of the panel
    for (int64_t p = 0; p < kc; ++p) {
      const float* src = b + p * ldb;
      float* dst = out + p * kNr;
#pragma GCC unroll 4
      for (int v = 0; v < kPackedNv; ++v) {
        const int64_t left = w - v * kLanes;
        store(dst + v * kLanes, left >= kLanes ? load(src + v * kLanes) : left > 0 ? load_part(src + v * kLanes, left) : zero());
      }
    }
    return;
  }
  // op(B)[p][j] = b[j * ldb + p]: columns of the panel are rows of B, by register-tile transposes.
  transpose_tiles(b, w, kc, ldb, out, kNr);  // ordinary stores: the panel is read next
  if (w < kNr)
    for (int64_t p = 0; p < kc; ++p)
      for (int64_t j = w; j < kNr; ++j) out[p * kNr + j] = 0.0f;
}

// op(A)[i0 .. i0+R, p0 ..] (R x kc, R < MR: the row tail) as [kc][MR]: one k step's R values
// adjacent, for the broadcasts. Rows R..MR are left as they are (the kernel for R rows never
// reads them). Full MR-row panels are read in place (see a_in_place).
template <int R>
inline void pack_a_panel(bool ta, const float* a, int64_t lda, int64_t kc, float* out) {
  constexpr int kMr = kPackedMr;
  for (int64_t p = 0; p < kc; ++p)
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) out[p * kMr + r] = ta ? a[p * lda + r] : a[r * lda + p];
}

// C[R x up to NR] = alpha * op(A)[R x kc] op(B)[kc x NR] + beta * C; beta == 0 never reads C.
// op(A)[r][p] is ap[p * as + r] (a packed panel, as = MR, or A^T in place, as = lda), or with
// RowsA ap[r * as + p] (A in place, row-major). op(B)[p][v * lanes ...] is bp + p * bs + v * lanes
// (a packed panel, bs = NR, or B in place, bs = ldb). n_left is the number of valid columns from
// c on (a packed panel's zero columns beyond it are not stored).
// alpha and beta are read through pointers after the k loop: passed as values they would hold
// two of the 32 registers through it, and GCC 12 then spilled a B vector to the stack (seen in
// the generated code: 8 extra loads per k step).
// Stores to C may alias them, so GCC cannot hoist the loads.
template <int R, bool RowsA, int V = kPackedNv>
__attribute__((always_inline)) inline void packed_micro_kernel(int64_t kc, const float* ap, int64_t as,
                                                               const float* bp, int64_t bs, const float* alpha_p,
                                                               const float* beta_p, float* c, int64_t ldc,
                                                               int64_t n_left) {
  F acc[R][V];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[r][v] = zero();
#pragma GCC unroll 2
  for (int64_t p = 0; p < kc; ++p) {
    F bv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) bv[v] = load(bp + p * bs + v * kLanes);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const F av = set1(RowsA ? ap[r * as + p] : ap[p * as + r]);
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
      float* out = c + r * ldc + v * kLanes;
      const int64_t w = n_left - v * kLanes;
      if (w >= kLanes)
        store(out, beta == 0.0f ? acc[r][v] * al : fma(load(out), be, acc[r][v] * al));
      else if (w > 0)
        store_part(out, beta == 0.0f ? acc[r][v] * al : fma(load_part(out, w), be, acc[r][v] * al), w);
    }
}

// Where the operands are read from, measured on the transformer shapes (bench/kernel_bench):
// - op(A) in place for full MR-row panels: row-major A as MR rows (NN, NT: 8 rows of kc floats,
//   24 KiB at kc = 768, stay in L1 across the NR panels) and A^T as kc steps of MR adjacent
//   floats (TN, TT). Packing it cost 5-10% on the n = 192 shapes, where each A panel meets only
//   4 B panels. Row tails (R < MR) are packed.
// - op(B) always packed. With row-major A (m = 6400, B = the weights, kc = 768) the packed panels
//   were faster (NN 768x768: 244 vs 210 GFLOP/s). With A^T (the dW products, k = 6400) B used to
//   be read in place, since packing it costs 1/m of the work; but its panels are then kc rows at
//   the stride of B's width, and packed ones won on every dW shape (Xeon AMX, 2 threads, two
//   alternated runs each: 576x192x6400 298-306 -> 313-316 GFLOP/s, 768x192 232-285 -> 290-313,
//   192x768 262-263 -> 300-316, 192x576 281-286 -> 303-305, 768x768 216-217 -> 275-292).
inline bool a_in_place(int R) { return R == kPackedMr; }

// Rows i0 .. i0+R of C (a: op(A)'s first element of them at k block start) against every NR-column
// panel of op(B)'s k x ncur block, packed in g.b_pack.
template <int R>
inline void packed_row_panel(const PackedGemmCall& g, const float* a, int64_t kc, int64_t ncur, const float* beta,
                             float* c) {
  constexpr int64_t kMr = kPackedMr, kNr = kPackedNr;
  // kernel(V, b panel, its row stride, first column): full panels, then a last narrower one
  // computes only the vectors that hold columns (n = 64: 48 + 16, not 48 + 48).
  auto each_panel = [&](auto kernel) {
    int64_t j = 0;
    for (; j + kNr <= ncur; j += kNr) kernel(std::integral_constant<int, kPackedNv>(), g.b_pack + j * kc, kNr, j);
    if (j == ncur) return;
    const int64_t vectors = (ncur - j + kLanes - 1) / kLanes;
    const float* bp = g.b_pack + j * kc;
    if constexpr (kPackedNv >= 2)
      if (vectors == 1) return kernel(std::integral_constant<int, 1>(), bp, kNr, j);
    if constexpr (kPackedNv >= 3)
      if (vectors == 2) return kernel(std::integral_constant<int, 2>(), bp, kNr, j);
    kernel(std::integral_constant<int, kPackedNv>(), bp, kNr, j);
  };
  if (a_in_place(R) && !g.trans_a)
    return each_panel([&](auto v, const float* bp, int64_t bs, int64_t j) {
      packed_micro_kernel<R, true, v()>(kc, a, g.lda, bp, bs, &g.alpha, beta, c + j, g.ldc, ncur - j);
    });
  if (a_in_place(R) && g.trans_a)
    return each_panel([&](auto v, const float* bp, int64_t bs, int64_t j) {
      packed_micro_kernel<R, false, v()>(kc, a, g.lda, bp, bs, &g.alpha, beta, c + j, g.ldc, ncur - j);
    });
  pack_a_panel<R>(g.trans_a, a, g.lda, kc, g.a_pack);
  each_panel([&](auto v, const float* bp, int64_t bs, int64_t j) {
    packed_micro_kernel<R, false, v()>(kc, g.a_pack, kMr, bp, bs, &g.alpha, beta, c + j, g.ldc, ncur - j);
  });
}

template <int R = kPackedMr>
inline void packed_rows(int64_t rows, const PackedGemmCall& g, const float* a, int64_t kc, int64_t ncur,
                        const float* beta, float* c) {
  if constexpr (R > 0) {
    if (rows == R) return packed_row_panel<R>(g, a, kc, ncur, beta, c);
    return packed_rows<R - 1>(rows, g, a, kc, ncur, beta, c);
  }
}

// Goto's loops on one thread: n in blocks of nc, k in blocks of kc (op(B)[kc x nc] packed once
// per block, then read by every row panel), m in panels of MR rows (op(A)[MR x kc], in L1 while
// it meets every NR-column panel of the block).
inline void packed_gemm(const PackedGemmCall& g) {
  constexpr int64_t kMr = kPackedMr, kNr = kPackedNr;
  for (int64_t jc = 0; jc < g.n; jc += g.nc) {
    const int64_t ncur = g.n - jc < g.nc ? g.n - jc : g.nc;
    for (int64_t pc = 0; pc < g.k; pc += g.kc) {
      const int64_t kc = g.k - pc < g.kc ? g.k - pc : g.kc;
      const float* b = g.trans_b ? g.b + jc * g.ldb + pc : g.b + pc * g.ldb + jc;
      for (int64_t j = 0; j < ncur; j += kNr) {
        const int64_t w = ncur - j < kNr ? ncur - j : kNr;
        pack_b_panel(g.trans_b, g.trans_b ? b + j * g.ldb : b + j, g.ldb, kc, w, g.b_pack + j * kc);
      }
      static const float one = 1.0f;
      const float* beta = pc == 0 ? &g.beta : &one;  // later k blocks add to what the first wrote
      for (int64_t i = 0; i < g.m; i += kMr) {
        const float* a = g.trans_a ? g.a + pc * g.lda + i : g.a + i * g.lda + pc;
        packed_rows(g.m - i < kMr ? g.m - i : kMr, g, a, kc, ncur, beta, g.c + i * g.ldc + jc);
      }
    }
  }
}

}  // namespace tessera::kernels::TESSERA_SIMD_NS
