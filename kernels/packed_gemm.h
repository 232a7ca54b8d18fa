#pragma once
// Our packed, cache-blocked f32 GEMM (Goto/BLIS structure), for the large products of the
// transformer's Linear layers. The per-ISA part (packing and the register-blocked micro-kernel)
// is simd_packed_gemm.inl, compiled into each SimdTable; the driver here splits C over threads
// and owns the per-thread packing buffers. Row-major, C = alpha op(A) op(B) + beta C, any
// leading dimensions; beta == 0 never reads C.
#include <cstdint>

#include "kernels/gemm.h"

namespace tessera::kernels {

// Register tile of the micro-kernel: MR rows of C by NR columns (whole vectors). AVX-512 has 32
// registers: 8 x 48 holds 24 accumulators and 3 B vectors, and each k step issues 3 loads and 8
// broadcasts for 24 FMAs (12 cycles on two FMA pipes), so loads never limit; 8 and 48 also divide
// every transformer size (192, 576, 768, 6400), so those shapes have no tails. 12 x 32, 14 x 32
// and 6 x 64 came within 2% of it (time over the 15 Linear shapes, 1 thread: 186-191 ms against
// 186-190 ms, the noise of this shared machine). AVX2 has 16 registers: 6 x 16 (12 accumulators,
// 2 B vectors), not swept.
constexpr int kPackedMrAvx512 = 8, kPackedNrAvx512 = 48;
constexpr int kPackedMrAvx2 = 6, kPackedNrAvx2 = 16;

// One single-threaded product on caller-owned buffers: a_pack holds mr x kc floats, b_pack
// kc x round_up(nc, nr). k is cut into blocks of kc (the last may be shorter) and n into blocks
// of nc; the k blocks fix the order of the additions, so callers that split C differently but
// pass the same kc get bitwise the same C.
struct PackedGemmCall {
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  float alpha = 1, beta = 0;
  const float* a = nullptr;
  int64_t lda = 0;
  const float* b = nullptr;
  int64_t ldb = 0;
  float* c = nullptr;
  int64_t ldc = 0;
  int64_t kc = 0, nc = 0;
  float* a_pack = nullptr;
  float* b_pack = nullptr;
};

// Whether the current SIMD path has our packed GEMM (not on the scalar path).
bool packed_gemm_available();

// C = alpha op(A) op(B) + beta C by our packed kernels on num_threads() threads, each computing
// its own rectangle of C (k is never split, so C does not depend on the thread count). On the
// scalar path (packed_gemm_available() false) it runs the reference GEMM.
void packed_gemm(const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c);

}  // namespace tessera::kernels
