// The AMX block product (the amx path of bf16_gemm.h). Compiled with -mamx-tile -mamx-bf16 and
// AVX-512 (CMakeLists.txt); bf16_gemm.cpp calls it only once the CPU has AMX and Linux granted
// this process the tile state.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "kernels/bf16_gemm_kernels.h"

namespace tessera::kernels::amx {
namespace {

// Linux's arch_prctl request for a dynamically enabled state component (asm/prctl.h) and the
// component number of the tile data (XFEATURE_XTILEDATA).
constexpr int kArchReqXcompPerm = 0x1023;
constexpr int kXfeatureTileData = 18;

// Tiles 0-3 hold a 32 x 32 block of C (2 x 2 tiles of 16 x 16 fp32), 4-5 two A tiles (16 rows x
// 32 bf16), 6-7 two B tiles (16 pair rows x 16 columns): every tile 16 rows of 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};

TileConfig make_config() {
  TileConfig config;
  for (int t = 0; t < 8; ++t) config.bytes_per_row[t] = 64, config.rows[t] = 16;
  return config;
}

// C[rows x cols] of one 32 x 32 block (rows <= 32, cols <= 32, from c on) = alpha * tiles + beta * C.
// TwoRows / TwoCols: whether the second A tile (rows 16..31) / B panel (columns 16..31) exists.
// Direct: every tile of C is whole, alpha = 1 and beta is 0 or 1, so the tiles start from C (or
// zero) and are stored straight back; otherwise they go through a buffer. With k = 192 (the
// ViT's dX products) staging every block cost as much as its products.
template <bool TwoRows, bool TwoCols, bool Direct>
void block_32x32(const uint16_t* a, int64_t kp, const uint16_t* b, int64_t rows, int64_t cols, float alpha,
                 float beta, float* c, int64_t ldc) {
  const int64_t a_stride = kp * 2;                    // bytes between rows of the A block
  const uint16_t* b1 = b + 16 * kp;                   // the next panel
  const int64_t c_stride = ldc * 4;
  if (Direct && beta != 0.0f) {
    _tile_loadd(0, c, c_stride);
    if (TwoCols) _tile_loadd(1, c + 16, c_stride);
    if (TwoRows) _tile_loadd(2, c + 16 * ldc, c_stride);
    if (TwoRows && TwoCols) _tile_loadd(3, c + 16 * ldc + 16, c_stride);
  } else {
    _tile_zero(0);
    if (TwoCols) _tile_zero(1);
    if (TwoRows) _tile_zero(2);
    if (TwoRows && TwoCols) _tile_zero(3);
  }
  for (int64_t p = 0; p < kp; p += 32) {
    _tile_loadd(4, a + p, a_stride);
    _tile_loadd(6, b + p * 16, 64);
    _tile_dpbf16ps(0, 4, 6);
    if (TwoCols) {
      _tile_loadd(7, b1 + p * 16, 64);
      _tile_dpbf16ps(1, 4, 7);
    }
    if (TwoRows) {
      _tile_loadd(5, a + 16 * kp + p, a_stride);
      _tile_dpbf16ps(2, 5, 6);
      if (TwoCols) _tile_dpbf16ps(3, 5, 7);
    }
  }
  if (Direct) {
    _tile_stored(0, c, c_stride);
    if (TwoCols) _tile_stored(1, c + 16, c_stride);
    if (TwoRows) _tile_stored(2, c + 16 * ldc, c_stride);
    if (TwoRows && TwoCols) _tile_stored(3, c + 16 * ldc + 16, c_stride);
    return;
  }
  alignas(64) float out[32][32];
  _tile_stored(0, &out[0][0], 128);
  if (TwoCols) _tile_stored(1, &out[0][16], 128);
  if (TwoRows) _tile_stored(2, &out[16][0], 128);
  if (TwoRows && TwoCols) _tile_stored(3, &out[16][16], 128);
  const __m512 al = _mm512_set1_ps(alpha), be = _mm512_set1_ps(beta);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; j += 16) {
      const __mmask16 m = cols - j >= 16 ? __mmask16(0xffff) : __mmask16((1u << (cols - j)) - 1);
      float* dst = c + r * ldc + j;
      const __m512 y = _mm512_mul_ps(_mm512_load_ps(&out[r][j]), al);
      _mm512_mask_storeu_ps(dst, m, beta == 0.0f ? y : _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, dst), be, y));
    }
}

template <bool TwoRows, bool TwoCols>
void block(const uint16_t* a, int64_t kp, const uint16_t* b, int64_t rows, int64_t cols, float alpha, float beta,
           float* c, int64_t ldc) {
  const bool whole = rows == (TwoRows ? 32 : 16) && cols == (TwoCols ? 32 : 16);
  if (whole && alpha == 1.0f && (beta == 0.0f || beta == 1.0f))
    return block_32x32<TwoRows, TwoCols, true>(a, kp, b, rows, cols, alpha, beta, c, ldc);
  block_32x32<TwoRows, TwoCols, false>(a, kp, b, rows, cols, alpha, beta, c, ldc);
}

}  // namespace

bool request_tile_permission() {
  static const bool granted = syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureTileData) == 0;
  return granted;
}

void configure_tiles() {
  static const TileConfig config = make_config();
  _tile_loadconfig(&config);
}

void multiply_block(const uint16_t* a_pack, const uint16_t* b_pack, int64_t kp, int64_t rows, int64_t cols,
                    float alpha, float beta, float* c, int64_t ldc) {
  const bool two_rows = rows > 16;
  for (int64_t j = 0; j < cols; j += 32) {
    const int64_t w = cols - j < 32 ? cols - j : 32;
    const uint16_t* b = b_pack + j * kp;
    if (two_rows && w > 16) block<true, true>(a_pack, kp, b, rows, w, alpha, beta, c + j, ldc);
    if (two_rows && w <= 16) block<true, false>(a_pack, kp, b, rows, w, alpha, beta, c + j, ldc);
    if (!two_rows && w > 16) block<false, true>(a_pack, kp, b, rows, w, alpha, beta, c + j, ldc);
    if (!two_rows && w <= 16) block<false, false>(a_pack, kp, b, rows, w, alpha, beta, c + j, ldc);
  }
}

}  // namespace tessera::kernels::amx
