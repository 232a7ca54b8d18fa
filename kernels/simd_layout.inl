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
constexpr int64_t transpose_tile = 16;

// Same three steps as the 8x8 one within 128-bit lanes (after them, lane L of u[4g + j] holds
// column 4L + j of rows 4g..4g+3), then two rounds of 128-bit lane shuffles gather each column.
// With `streaming`, the 16 output rows go out by streaming stores: out and ld_out must then
// put every one of them on a 64-byte boundary.
template <bool streaming = false>
inline void transpose_tile_kernel(const float* in, int64_t ld_in, float* out, int64_t ld_out) {
  const auto put = [](float* p, __m512 v) __attribute__((always_inline)) {
    if constexpr (streaming)
      _mm512_stream_ps(p, v);
    else
      _mm512_storeu_ps(p, v);
  };
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
    put(out + j * ld_out, _mm512_shuffle_f32x4(v0, v2, 0x88));         // column j
    put(out + (4 + j) * ld_out, _mm512_shuffle_f32x4(v1, v3, 0x88));   // column 4 + j
    put(out + (8 + j) * ld_out, _mm512_shuffle_f32x4(v0, v2, 0xdd));   // column 8 + j
    put(out + (12 + j) * ld_out, _mm512_shuffle_f32x4(v1, v3, 0xdd));  // column 12 + j
  }
}
#else
constexpr int64_t transpose_tile = 8;
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
  constexpr int64_t T = transpose_tile;
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

// Scratch for one block of the streaming transpose; per thread, kept between calls.
inline float* transpose_scratch(int64_t floats) {
  thread_local std::vector<float> buffer;
  if (int64_t(buffer.size()) < floats) buffer.resize(size_t(floats));
  return buffer.data();
}

// The streaming path (big outputs; transpose.cpp hands it bands of 256 rows).
// When every output row starts on a 64-byte boundary (AVX-512, ld_out a multiple of 16), each
// 16x16 tile writes 16 whole lines: they are streamed straight from the tiles. Otherwise a tile's
// 64-byte rows straddle two lines each; then blocks of the band's rows x transpose_stream_block
// columns are transposed by tiles into scratch (~270 KiB, in L2) and each output row's piece is
// copied out by store_row: streaming stores of its whole lines only. While a block is copied out,
// the next block's input (or the next band's: prefetches never fault) is prefetched, one input
// row per output row, so that reads and writes overlap. (Measured on 128 MiB, 1 thread, under
// load: 62 % of copy against 43 % for plain tiles with unaligned output rows, 80 % against 57 %
// with aligned ones. Interleaving the copy-out with the next block's tiles was slower: 38-53 %.)
constexpr int64_t transpose_stream_block = 256;

inline void transpose_streaming(const float* in, int64_t rows, int64_t cols, int64_t ld_in, float* out,
                                int64_t ld_out) {
  if (lanes == 16 && ld_out % 16 == 0 && reinterpret_cast<uintptr_t>(out) % 64 == 0) {
    transpose_tiles<lanes == 16>(in, rows, cols, ld_in, out, ld_out);  // every tile row is a whole line
    stream_fence();
    return;
  }
  constexpr int64_t block = transpose_stream_block;
  const int64_t ld = (rows + 15) / 16 * 16 + 16;  // not a multiple of 1 KiB: no L1 set conflicts
  float* buffer = transpose_scratch(ld * block);
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
