// Data movement: transpose by register tiles, 16x16 on AVX-512 and 8x8 on AVX2. The tile loops
// are unrolled by pragma: left as loops (GCC -O2), the arrays of vectors live on the stack.
#include <immintrin.h>

#include <algorithm>
#include <vector>

namespace tessera::kernels::TESSERA_SIMD_NS {

inline void transpose_8x8(const float* in, int64_t ld_in, float* out, int64_t ld_out) {
  __m256 r[8], t[8];
  #pragma GCC unroll 16
  for (int k = 0; k < 8; ++k) r[k] = _mm256_loadu_ps(in + k * ld_in);
  #pragma GCC unroll 16
  for (int k = 0; k < 8; k += 2) {
    t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);      // a0 b0 a1 b1 | a4 b4 a5 b5
    t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);  // a2 b2 a3 b3 | a6 b6 a7 b7
  }
  #pragma GCC unroll 16
  for (int k = 0; k < 8; k += 4) {
    r[k] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(1, 0, 1, 0));      // a0 b0 c0 d0 | a4 ...
    r[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(3, 2, 3, 2));  // a1 b1 c1 d1 | a5 ...
    r[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  #pragma GCC unroll 16
  for (int k = 0; k < 4; ++k) {
    _mm256_storeu_ps(out + k * ld_out, _mm256_permute2f128_ps(r[k], r[k + 4], 0x20));
    _mm256_storeu_ps(out + (k + 4) * ld_out, _mm256_permute2f128_ps(r[k], r[k + 4], 0x31));
  }
}

#if defined(__AVX512F__)
constexpr int64_t kTransposeTile = 16;

// Same three steps as the 8x8 one within 128-bit lanes (after them, lane L of u[4g + j] holds
// column 4L + j of rows 4g..4g+3), then two rounds of 128-bit lane shuffles gather each column.
// put(j, v) receives column j of the tile (output row j), j = 0..15.
template <class Put>
__attribute__((always_inline)) inline void transpose_tile_columns(const float* in, int64_t ld_in, Put&& put) {
  __m512 r[16], t[16];
  #pragma GCC unroll 16
  for (int k = 0; k < 16; ++k) r[k] = _mm512_loadu_ps(in + k * ld_in);
  #pragma GCC unroll 16
  for (int k = 0; k < 16; k += 2) {
    t[k] = _mm512_unpacklo_ps(r[k], r[k + 1]);
    t[k + 1] = _mm512_unpackhi_ps(r[k], r[k + 1]);
  }
  #pragma GCC unroll 16
  for (int k = 0; k < 16; k += 4) {  // r[] now holds the u[] of the comment
    r[k] = _mm512_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[k + 1] = _mm512_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[k + 2] = _mm512_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[k + 3] = _mm512_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  #pragma GCC unroll 16
  for (int j = 0; j < 4; ++j) {
    // lanes (0, 2) / (1, 3) of rows 0-3 and 4-7 (v0, v1), of rows 8-11 and 12-15 (v2, v3)
    const __m512 v0 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88), v1 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xdd);
    const __m512 v2 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
    const __m512 v3 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xdd);
    put(j, _mm512_shuffle_f32x4(v0, v2, 0x88));       // column j
    put(4 + j, _mm512_shuffle_f32x4(v1, v3, 0x88));   // column 4 + j
    put(8 + j, _mm512_shuffle_f32x4(v0, v2, 0xdd));   // column 8 + j
    put(12 + j, _mm512_shuffle_f32x4(v1, v3, 0xdd));  // column 12 + j
  }
}

// With `streaming`, the 16 output rows go out by streaming stores: out and ld_out must then
// put every one of them on a 64-byte boundary.
template <bool streaming = false>
inline void transpose_tile_kernel(const float* in, int64_t ld_in, float* out, int64_t ld_out) {
  transpose_tile_columns(in, ld_in, [&](int j, __m512 v) __attribute__((always_inline)) {
    if constexpr (streaming)
      _mm512_stream_ps(out + j * ld_out, v);
    else
      _mm512_storeu_ps(out + j * ld_out, v);
  });
}
#else
constexpr int64_t kTransposeTile = 8;
template <bool streaming = false>  // never true: an 8x8 tile writes half lines
inline void transpose_tile_kernel(const float* in, int64_t ld_in, float* out, int64_t ld_out) {
  static_assert(!streaming);
  transpose_8x8(in, ld_in, out, ld_out);
}
#endif

// Full tiles by shuffles, the ragged right and bottom edges element by element. Strips of one
// tile of rows, tiles along the row: the input streams in row order, and every tile writes whole
// 64-byte output rows (AVX-512), by streaming stores when `streaming` (see transpose_streaming).
template <bool streaming = false>
inline void transpose_tiles(const float* in, int64_t rows, int64_t cols, int64_t ld_in, float* out, int64_t ld_out) {
  constexpr int64_t T = kTransposeTile;
  const int64_t rows_t = rows - rows % T, cols_t = cols - cols % T;
  for (int64_t r = 0; r < rows_t; r += T) {
    for (int64_t c = 0; c < cols_t; c += T)
      transpose_tile_kernel<streaming>(in + r * ld_in + c, ld_in, out + c * ld_out + r, ld_out);
    for (int64_t c = cols_t; c < cols; ++c)
      for (int64_t k = 0; k < T; ++k) out[c * ld_out + r + k] = in[(r + k) * ld_in + c];
  }
  for (int64_t r = rows_t; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[c * ld_out + r] = in[r * ld_in + c];
}

// The streaming path (big outputs; transpose.cpp hands each thread one range of whole bands of
// kTransposeStreamBlock rows). When every output row starts on a 64-byte boundary (AVX-512,
// ld_out a multiple of 16), each 16x16 tile writes 16 whole lines: they are streamed straight
// from the tiles.
constexpr int64_t kTransposeStreamBlock = 256;

#if defined(__AVX512F__)
// Otherwise, on AVX-512, the lines are put together in registers. Output row q starts shift_q
// floats past a line, so each 16-float column a tile gives it straddles two lines; each whole
// line is made of the row's previous column (kept in `carry`) and the current one by one
// vpermt2ps (the last shift_q floats of the one, the first 16 - shift_q of the other) and goes
// out by one streaming store. Only each row's first and last lines are partial: masked ordinary
// stores, aligned to their line (unaligned masked stores reaching into the next, streamed line
// measured ~10 % slower overall). The carry runs across bands, so a thread's range has partial
// lines only at its two ends. Tiles go by bands of kTransposeStreamBlock input rows, in blocks
// of kTransposeRealignBlock columns down each band, then along it. (Measured on 256 MiB
// [n/768, 768], shared machine: blocks of 128 columns beat whole rows by ~10 % on 2 threads and
// ~25 % on 1, and 256 columns by ~5-10 %; strips of 16 columns down a band with the carry in
// registers (spilled), or 128-column blocks down a thread's whole range, ran at 2/3. On aligned
// rows this path is 5-15 % slower than the direct one above, which is kept for them.)
constexpr int64_t kTransposeRealignBlock = 128;

struct TransposeCarry {
  std::vector<float> columns;  // per output row, its last 16-float column
  std::vector<float*> line;    // per output row, the line holding its first float
  std::vector<int32_t> shift;  // per output row, how many floats past that line's start
};

inline void transpose_realigned(const float* in, int64_t rows, int64_t cols, int64_t ld_in, float* out,
                                int64_t ld_out) {
  constexpr int64_t T = 16;
  const int64_t rows_t = rows - rows % T, cols_t = cols - cols % T;
  if (rows_t > 0 && cols_t > 0) {
    thread_local TransposeCarry scratch;  // kept between calls: no allocation in the steady state
    if (int64_t(scratch.shift.size()) < cols_t) {
      scratch.columns.resize(size_t(cols_t * T));
      scratch.line.resize(size_t(cols_t));
      scratch.shift.resize(size_t(cols_t));
    }
    float* carry = scratch.columns.data();
    float** line = scratch.line.data();
    int32_t* shift = scratch.shift.data();
    for (int64_t q = 0; q < cols_t; ++q) {
      shift[q] = int32_t(reinterpret_cast<uintptr_t>(out + q * ld_out) % 64 / sizeof(float));
      line[q] = out + q * ld_out - shift[q];
    }
    const __m512i iota = _mm512_setr_epi32(16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31);
    for (int64_t c = 0; c < cols_t; c += T)  // the first 16 input rows: the heads
      transpose_tile_columns(in + c, ld_in, [&](int j, __m512 v) __attribute__((always_inline)) {
        const int32_t s = shift[c + j];
        if (s == 0)
          _mm512_stream_ps(line[c + j], v);
        else  // lanes [s, 16) of the row's first line: v moved up by s lanes
          _mm512_mask_store_ps(line[c + j], __mmask16(0xffffu << s),
                               _mm512_permutex2var_ps(v, _mm512_sub_epi32(iota, _mm512_set1_epi32(s)), v));
        _mm512_storeu_ps(carry + (c + j) * T, v);
      });
    constexpr int64_t band = kTransposeStreamBlock, block = kTransposeRealignBlock;
    for (int64_t r0 = 0; r0 < rows_t; r0 += band)
      for (int64_t c0 = 0; c0 < cols_t; c0 += block)
        for (int64_t r = std::max(r0, T); r < std::min(rows_t, r0 + band); r += T)
          for (int64_t c = c0; c < std::min(cols_t, c0 + block); c += T)
            transpose_tile_columns(in + r * ld_in + c, ld_in, [&](int j, __m512 v) __attribute__((always_inline)) {
              float* last = carry + (c + j) * T;  // lane k of pick: 16 + k - shift (>= 16: from v)
              const __m512i pick = _mm512_sub_epi32(iota, _mm512_set1_epi32(shift[c + j]));
              _mm512_stream_ps(line[c + j] + r, _mm512_permutex2var_ps(_mm512_loadu_ps(last), pick, v));
              _mm512_storeu_ps(last, v);
            });
    for (int64_t q = 0; q < cols_t; ++q)  // tails: lanes [0, shift) of the line after the last streamed one
      if (shift[q] != 0) {
        const __m512 last = _mm512_loadu_ps(carry + q * T);
        _mm512_mask_store_ps(line[q] + rows_t, __mmask16((1u << shift[q]) - 1),
                             _mm512_permutex2var_ps(last, _mm512_sub_epi32(iota, _mm512_set1_epi32(shift[q])), last));
      }
  }
  for (int64_t c = cols_t; c < cols; ++c)
    for (int64_t r = 0; r < rows_t; ++r) out[c * ld_out + r] = in[r * ld_in + c];
  for (int64_t r = rows_t; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[c * ld_out + r] = in[r * ld_in + c];
}
#endif

// On AVX2, blocks of the band's rows x kTransposeStreamBlock columns are transposed by tiles
// into scratch (~270 KiB, in L2) and each output row's piece is copied out by store_row:
// streaming stores of its whole lines only. While a block is copied out, the next block's input
// (or the next band's: prefetches never fault) is prefetched, one input row per output row, so
// that reads and writes overlap. (Measured on 128 MiB, 1 thread, under load: 62 % of copy
// against 43 % for plain tiles with unaligned output rows, 80 % against 57 % with aligned ones.
// Interleaving the copy-out with the next block's tiles was slower: 38-53 %.)

// One band of at most kTransposeStreamBlock rows through scratch.
inline void transpose_band_through_scratch(const float* in, int64_t rows, int64_t cols, int64_t ld_in, float* out,
                                           int64_t ld_out) {
  constexpr int64_t block = kTransposeStreamBlock;
  const int64_t ld = (rows + 15) / 16 * 16 + 16;  // not a multiple of 1 KiB: no L1 set conflicts
  float* buffer = row_scratch(ld * block);  // simd_reduce.inl's per-thread scratch
  for (int64_t c0 = 0; c0 < cols; c0 += block) {
    const int64_t n = std::min(block, cols - c0);
    transpose_tiles(in + c0, rows, n, ld_in, buffer, ld);
    const bool last = c0 + block >= cols;
    const float* next = last ? in + rows * ld_in : in + c0 + block;
    const int64_t next_n = last ? std::min(block, cols) : std::min(block, cols - c0 - block);
    for (int64_t c = 0; c < n; ++c) {
      if (c < rows) prefetch_lines(next + c * ld_in, next_n);
      const float* piece = buffer + c * ld;
      store_row(out + (c0 + c) * ld_out, rows, true,
                [&](int64_t i, int64_t w) __attribute__((always_inline)) { return load_n(piece + i, w); });
    }
  }
}

// Any number of rows (transpose.cpp hands each thread one range of whole bands).
inline void transpose_streaming(const float* in, int64_t rows, int64_t cols, int64_t ld_in, float* out,
                                int64_t ld_out) {
  if (kLanes == 16 && ld_out % 16 == 0 && reinterpret_cast<uintptr_t>(out) % 64 == 0) {
    transpose_tiles<kLanes == 16>(in, rows, cols, ld_in, out, ld_out);  // every tile row is a whole line
  } else {
#if defined(__AVX512F__)
    transpose_realigned(in, rows, cols, ld_in, out, ld_out);
#else
    for (int64_t r = 0; r < rows; r += kTransposeStreamBlock)
      transpose_band_through_scratch(in + r * ld_in, std::min(kTransposeStreamBlock, rows - r), cols, ld_in, out + r,
                                     ld_out);
#endif
  }
  stream_fence();
}

// out = in^T; by streaming stores when the caller asked for them (stream_row_output).
inline void transpose(const float* in, int64_t rows, int64_t cols, int64_t ld_in, float* out, int64_t ld_out) {
  if (stream_row_output)
    transpose_streaming(in, rows, cols, ld_in, out, ld_out);
  else
    transpose_tiles(in, rows, cols, ld_in, out, ld_out);
}

}  // namespace tessera::kernels::TESSERA_SIMD_NS
