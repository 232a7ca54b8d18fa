#pragma once
// The per-ISA half of the bf16 GEMM (bf16_gemm.h): packing op(A) and op(B) into bf16, and the
// block products of the AMX and AVX512-BF16 paths. bf16_gemm.cpp owns the threads, the blocking
// loops and the buffers. Packing is AVX512-BF16 code on both paths (every AMX CPU has it).
//
// Packed layouts, shared by both paths (so one packing serves both):
// - A block: kBf16Rows rows of op(A), each kp bf16 long (k padded to a multiple of 32 with zeros,
//   rows beyond m zero): row r at a_pack + r * kp. An AMX A tile is 16 of these rows at one
//   32-wide k step (stride kp * 2 bytes); vdpbf16ps broadcasts one row's (k, k+1) pair.
// - B block: panels of 16 columns of op(B), each kp / 2 rows of 16 (k, k+1) pairs ("VNNI"):
//   element (p, j) of a panel at panel[(p / 2) * 32 + j * 2 + p % 2]. An AMX B tile is 16 such
//   rows (one 32-wide k step); for vdpbf16ps one row is one vector. Columns beyond n are zero.
#include <cstdint>

namespace tessera::kernels {

constexpr int64_t kBf16Rows = 32;      // rows of op(A) per packed block (two AMX tiles)
constexpr int64_t kBf16Panel = 16;     // columns of op(B) per packed panel
constexpr int64_t kBf16KStep = 32;     // k is padded to a multiple of this

namespace avx512bf16 {
// rows rows of op(A) starting at `a` (the block's element (0, 0)), kc of k, into consecutive
// A blocks (row r at out + r * kp, kp = round_up(kc, 32)); the last block's rows beyond are zeroed.
void pack_a(bool trans_a, const float* a, int64_t lda, int64_t rows, int64_t kc, uint16_t* out);
// cols columns of op(B) starting at `b`, kc of k, into ceil(cols / 16) panels of the B-block layout.
void pack_b(bool trans_b, const float* b, int64_t ldb, int64_t kc, int64_t cols, uint16_t* out);
// C[rows x cols] = alpha * A block * B block (kp of k) + beta * C; beta == 0 never reads C.
void multiply_block(const uint16_t* a_pack, const uint16_t* b_pack, int64_t kp, int64_t rows, int64_t cols,
                    float alpha, float beta, float* c, int64_t ldc);
}  // namespace avx512bf16

namespace amx {
// Asks Linux for the AMX tile state (once per process); false if it is refused.
bool request_tile_permission();
// Loads the tile configuration on the calling thread; before its first multiply_block in a product.
void configure_tiles();
// As avx512bf16::multiply_block, by tiles.
void multiply_block(const uint16_t* a_pack, const uint16_t* b_pack, int64_t kp, int64_t rows, int64_t cols,
                    float alpha, float beta, float* c, int64_t ldc);
}  // namespace amx

}  // namespace tessera::kernels
