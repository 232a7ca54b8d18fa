// bf16 packing (both bf16 paths) and the vdpbf16ps block product (the avx512bf16 path). Compiled
// with -mavx512bf16 and AVX-512 (CMakeLists.txt); bf16_gemm.cpp calls it only on CPUs that have it.
// GCC 12's AVX-512 intrinsics trip -Wmaybe-uninitialized (GCC bug 105593), as in simd_avx512.cpp.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "kernels/bf16_gemm_kernels.h"

namespace tessera::kernels::avx512bf16 {
namespace {

__mmask16 first(int64_t n) { return n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1); }
__m512 load_first(const float* p, int64_t n) { return _mm512_maskz_loadu_ps(first(n), p); }

// 32 floats, lo then hi, as 32 bf16 in the same order (round to nearest even).
__m512i to_bf16(__m512 lo, __m512 hi) { return (__m512i)_mm512_cvtne2ps_pbh(hi, lo); }

// Two rows of 16 floats as 16 (row0[j], row1[j]) pairs: the layout of one k pair of a B panel.
__m512i to_bf16_pairs(__m512 row0, __m512 row1) {
  static const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                                     23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(interleave, to_bf16(row0, row1));
}

// r[i] lane j <-> r[j] lane i for 32-bit lanes: three rounds within 128-bit lanes, then the
// 128-bit lanes gathered in two rounds of shuffles (after the first three, lane L of r[4g + j]
// holds column 4L + j of rows 4g .. 4g+3).
void transpose_16x16(__m512i r[16]) {
  __m512i t[16];
#pragma GCC unroll 16
  for (int k = 0; k < 16; k += 2) {
    t[k] = _mm512_unpacklo_epi32(r[k], r[k + 1]);
    t[k + 1] = _mm512_unpackhi_epi32(r[k], r[k + 1]);
  }
#pragma GCC unroll 16
  for (int k = 0; k < 16; k += 4) {
    r[k] = _mm512_unpacklo_epi64(t[k], t[k + 2]);
    r[k + 1] = _mm512_unpackhi_epi64(t[k], t[k + 2]);
    r[k + 2] = _mm512_unpacklo_epi64(t[k + 1], t[k + 3]);
    r[k + 3] = _mm512_unpackhi_epi64(t[k + 1], t[k + 3]);
  }
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    const __m512i u0 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0x88), u1 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0xdd);
    const __m512i v0 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0x88),
                  v1 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0xdd);
    t[j] = _mm512_shuffle_i32x4(u0, v0, 0x88);
    t[8 + j] = _mm512_shuffle_i32x4(u0, v0, 0xdd);
    t[4 + j] = _mm512_shuffle_i32x4(u1, v1, 0x88);
    t[12 + j] = _mm512_shuffle_i32x4(u1, v1, 0xdd);
  }
#pragma GCC unroll 16
  for (int k = 0; k < 16; ++k) r[k] = t[k];
}

int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

}  // namespace

void pack_a(bool trans_a, const float* a, int64_t lda, int64_t rows, int64_t kc, uint16_t* out) {
  const int64_t kp = round_up(kc, kBf16KStep);
  if (!trans_a) {  // rows of op(A) are rows of A: convert in place order
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t p = 0; p < kp; p += 32)
        _mm512_storeu_si512(out + r * kp + p,
                            to_bf16(load_first(a + r * lda + p, kc - p), load_first(a + r * lda + p + 16, kc - p - 16)));
  } else {  // op(A)[r][p] = a[p * lda + r]: 16 rows x 32 k at a time, as pairs, then transposed;
            // along the rows of A first, so that each of A's rows is read as one stream
    for (int64_t p = 0; p < kp; p += 32)
      for (int64_t r0 = 0; r0 < rows; r0 += 16) {
        __m512i d[16];  // d[q] = the 16 rows' (k = p + 2q, p + 2q + 1) pairs
        for (int q = 0; q < 16; ++q) {
          const int64_t p0 = p + 2 * q;
          const __m512 x0 = p0 < kc ? load_first(a + p0 * lda + r0, rows - r0) : _mm512_setzero_ps();
          const __m512 x1 = p0 + 1 < kc ? load_first(a + (p0 + 1) * lda + r0, rows - r0) : _mm512_setzero_ps();
          d[q] = to_bf16_pairs(x0, x1);
        }
        transpose_16x16(d);  // d[r] = row r0 + r's 32 bf16 of this k step
        for (int r = 0; r < 16 && r0 + r < rows; ++r) _mm512_storeu_si512(out + (r0 + r) * kp + p, d[r]);
      }
  }
  const int64_t padded = (rows + kBf16Rows - 1) / kBf16Rows * kBf16Rows;
  std::memset(out + rows * kp, 0, size_t(padded - rows) * size_t(kp) * sizeof(uint16_t));
}

void pack_b(bool trans_b, const float* b, int64_t ldb, int64_t kc, int64_t cols, uint16_t* out) {
  const int64_t kp = round_up(kc, kBf16KStep);
  if (!trans_b) {  // op(B) rows are rows of B: pair consecutive rows, each pair read whole (two streams)
    for (int64_t p = 0; p < kp; p += 2)
      for (int64_t j0 = 0; j0 < cols; j0 += kBf16Panel) {
        const __m512 x0 = p < kc ? load_first(b + p * ldb + j0, cols - j0) : _mm512_setzero_ps();
        const __m512 x1 = p + 1 < kc ? load_first(b + (p + 1) * ldb + j0, cols - j0) : _mm512_setzero_ps();
        _mm512_storeu_si512(out + j0 * kp + p * 16, to_bf16_pairs(x0, x1));
      }
    return;
  }
  // op(B)[p][j] = b[j * ldb + p]: a row of B is already pairs along k; transposed 16 x 16
  for (int64_t j0 = 0; j0 < cols; j0 += kBf16Panel) {
    uint16_t* panel = out + j0 * kp;  // kp / 2 rows of 32 bf16
    const int64_t w = cols - j0;
    for (int64_t p = 0; p < kp; p += 32) {
      __m512i d[16];  // d[j] = column j0 + j's 16 pairs of this k step
      for (int j = 0; j < 16; ++j) {
        const float* col = b + (j0 + j) * ldb + p;
        d[j] = j < w ? to_bf16(load_first(col, kc - p), load_first(col + 16, kc - p - 16)) : _mm512_setzero_si512();
      }
      transpose_16x16(d);  // d[q] = the pair row p / 2 + q
      for (int q = 0; q < 16; ++q) _mm512_storeu_si512(panel + (p + 2 * q) * 16, d[q]);
    }
  }
}

namespace {

// C[R x V*16] (cols valid from c on) = alpha * (R rows of the A block) (V panels) + beta * C.
// Per k pair: V panel rows loaded, R pair broadcasts, R * V vdpbf16ps. R = 8, V = 3 is the fp32
// kernel's 8 x 48 tile (24 accumulators, 3 B vectors of the 32 registers).
template <int R, int V>
void block_tile(const uint16_t* a, int64_t kp, const uint16_t* b, float alpha, float beta, float* c, int64_t ldc,
                int64_t cols) {
  __m512 acc[R][V];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 3
    for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t q = 0; q < kp / 2; ++q) {
    __m512bh bv[V];
#pragma GCC unroll 3
    for (int v = 0; v < V; ++v) bv[v] = (__m512bh)_mm512_loadu_si512(b + v * 16 * kp + q * 32);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      int32_t pair;
      std::memcpy(&pair, a + r * kp + 2 * q, 4);
      const __m512bh av = (__m512bh)_mm512_set1_epi32(pair);
#pragma GCC unroll 3
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], av, bv[v]);
    }
  }
  const __m512 al = _mm512_set1_ps(alpha), be = _mm512_set1_ps(beta);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 3
    for (int v = 0; v < V; ++v) {
      const __mmask16 m = first(cols - v * 16);
      if (m == 0) continue;
      float* out = c + r * ldc + v * 16;
      const __m512 y = _mm512_mul_ps(acc[r][v], al);
      _mm512_mask_storeu_ps(out, m, beta == 0.0f ? y : _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, out), be, y));
    }
}

template <int R>
void block_rows(const uint16_t* a, const uint16_t* b, int64_t kp, int64_t cols, float alpha, float beta, float* c,
                int64_t ldc) {
  for (int64_t j = 0; j < cols; j += 48) {
    const int64_t panels = (cols - j + 15) / 16;  // the last group may have 1 or 2
    if (panels >= 3) block_tile<R, 3>(a, kp, b + j * kp, alpha, beta, c + j, ldc, cols - j);
    if (panels == 2) block_tile<R, 2>(a, kp, b + j * kp, alpha, beta, c + j, ldc, cols - j);
    if (panels == 1) block_tile<R, 1>(a, kp, b + j * kp, alpha, beta, c + j, ldc, cols - j);
  }
}

template <int R = 8>
void block_row_tail(int64_t rows, const uint16_t* a, const uint16_t* b, int64_t kp, int64_t cols, float alpha,
                    float beta, float* c, int64_t ldc) {
  if constexpr (R > 0) {
    if (rows == R) return block_rows<R>(a, b, kp, cols, alpha, beta, c, ldc);
    return block_row_tail<R - 1>(rows, a, b, kp, cols, alpha, beta, c, ldc);
  }
}

}  // namespace

void multiply_block(const uint16_t* a_pack, const uint16_t* b_pack, int64_t kp, int64_t rows, int64_t cols,
                    float alpha, float beta, float* c, int64_t ldc) {
  for (int64_t r = 0; r < rows; r += 8) {
    const int64_t n = rows - r < 8 ? rows - r : 8;
    block_row_tail(n, a_pack + r * kp, b_pack, kp, cols, alpha, beta, c + r * ldc, ldc);
  }
}

}  // namespace tessera::kernels::avx512bf16
