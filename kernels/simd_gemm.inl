// Small GEMM for the batched products of attention (e.g. 50x50x64 per head), where a library
// call costs more than the arithmetic. op(B) is packed once into a zero-padded row-major panel
// [k, n rounded up to whole vectors] on the stack, then C is computed in 6-row x up-to-4-vector
// register blocks (packed_micro_kernel): per step of k, 6 broadcasts of A and up to 4 loads of
// B feed 24 FMAs.
#include "kernels/vec.h"

#include <type_traits>

namespace tessera::kernels::TESSERA_SIMD_NS {

// R rows of C by V vectors: packed_micro_kernel (simd_packed_gemm.inl) with A read in place,
// row-major (RowsA) or transposed, and the panel of op(B) with row stride np.
template <int R>
inline void small_gemm_rows(int V, const float* a, int64_t lda, bool ta, const float* pack, int64_t np, int64_t k,
                            const float* alpha, const float* beta, float* c, int64_t ldc, int64_t n_left) {
  auto run = [&](auto v) {
    if (ta)
      packed_micro_kernel<R, false, v()>(k, a, lda, pack, np, alpha, beta, c, ldc, n_left);
    else
      packed_micro_kernel<R, true, v()>(k, a, lda, pack, np, alpha, beta, c, ldc, n_left);
  };
  switch (V) {
    case 1: return run(std::integral_constant<int, 1>());
    case 2: return run(std::integral_constant<int, 2>());
    case 3: return run(std::integral_constant<int, 3>());
    default: return run(std::integral_constant<int, 4>());
  }
}

// Requires k * round_up(n, lanes) <= kSmallGemmPackFloats (checked by the caller).
inline void small_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                       const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const int64_t width = (n + kLanes - 1) / kLanes * kLanes;  // columns computed, in whole vectors
  int64_t np = width;                                       // row stride of the panel
  alignas(64) float pack[kSmallGemmPackFloats];
  const float* panel = pack;
  if (!tb && n % kLanes == 0) {  // B's rows are already whole vectors: use them in place
    panel = b;
    np = ldb;
  } else if (tb) {
    transpose(b, n, k, ldb, pack, np);  // pack[p, j] = B[j, p], by register tiles
    for (int64_t p = 0; p < k; ++p)
      for (int64_t j = n; j < np; ++j) pack[p * np + j] = 0.0f;
  } else {
    for (int64_t p = 0; p < k; ++p) {
      float* row = pack + p * np;
      for (int64_t j = 0; j < n; ++j) row[j] = b[p * ldb + j];
      for (int64_t j = n; j < np; ++j) row[j] = 0.0f;
    }
  }
  for (int64_t i = 0; i < m; i += 6) {
    const int64_t rows = m - i < 6 ? m - i : 6;
    const float* ai = ta ? a + i : a + i * lda;
    for (int64_t j = 0; j < width; j += 4 * kLanes) {
      const int V = int((width - j) / kLanes < 4 ? (width - j) / kLanes : 4);
      float* cij = c + i * ldc + j;
      const float* pj = panel + j;
      switch (rows) {
        case 1: small_gemm_rows<1>(V, ai, lda, ta, pj, np, k, &alpha, &beta, cij, ldc, n - j); break;
        case 2: small_gemm_rows<2>(V, ai, lda, ta, pj, np, k, &alpha, &beta, cij, ldc, n - j); break;
        case 3: small_gemm_rows<3>(V, ai, lda, ta, pj, np, k, &alpha, &beta, cij, ldc, n - j); break;
        case 4: small_gemm_rows<4>(V, ai, lda, ta, pj, np, k, &alpha, &beta, cij, ldc, n - j); break;
        case 5: small_gemm_rows<5>(V, ai, lda, ta, pj, np, k, &alpha, &beta, cij, ldc, n - j); break;
        default: small_gemm_rows<6>(V, ai, lda, ta, pj, np, k, &alpha, &beta, cij, ldc, n - j); break;
      }
    }
  }
}

}  // namespace tessera::kernels::TESSERA_SIMD_NS
