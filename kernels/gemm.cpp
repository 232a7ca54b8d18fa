#include "kernels/gemm.h"

#include <atomic>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "kernels/bf16_gemm.h"
#include "kernels/blas.h"
#include "kernels/gemm_ref.h"
#include "kernels/packed_gemm.h"
#include "kernels/simd_table.h"
#include "kernels/cpu.h"
#include "kernels/threads.h"

namespace tessera::kernels {
namespace {

CBLAS_TRANSPOSE op(bool t) { return t ? CblasTrans : CblasNoTrans; }

// Below this many multiply-adds a product is too small to split over threads; a batch of such
// products (attention's 50x50x64 per head) runs one product per thread instead, where OpenBLAS
// (inside our OpenMP region) stays single-threaded and pays no fork/join per product.
constexpr int64_t kSmallProduct = int64_t(1) << 21;

// Our packed GEMM (packed_gemm.h) or OpenBLAS 0.3.21, by measurement (1 thread, CPU time,
// interleaved). AVX-512 against its SkylakeX kernels: ours is 1.03-1.21x on all 15 Linear shapes
// of bench/kernel_bench --gemm, 0.95-1.7x on other shapes above 2^21 multiply-adds (n = 10 ..
// 3072, k = 27 .. 8192, all transpose cases), but 0.8-0.87x on 64^3 and 100^3, which stay with
// OpenBLAS. AVX2 (TESSERA_SIMD=avx2) against its Haswell kernels, on the
// same CPU: ours 1.06-1.16x with row-major A (NN, NT), 0.92-1.01x with A^T (TN), which stays
// with OpenBLAS. Without OpenBLAS ours runs every f32 product the small kernel does not take.
bool packed_for(const GemmShape& s) {
  if (!packed_gemm_available()) return false;
  if (blas::openblas() == nullptr) return true;
  if (s.m * s.n * s.k <= kSmallProduct) return false;
  return simd_path() == SimdPath::avx512 || !s.trans_a;
}

void call(const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c) {
  if (packed_for(s)) return packed_gemm(s, alpha, a, b, beta, c);
  if (const blas::OpenBlas* lib = blas::openblas())
    lib->sgemm(CblasRowMajor, op(s.trans_a), op(s.trans_b), int(s.m), int(s.n), int(s.k), alpha, a, int(s.lda), b,
               int(s.ldb), beta, c, int(s.ldc));
  else
    ref::gemm(s, alpha, a, b, beta, c);
}

void call(const GemmShape& s, double alpha, const double* a, const double* b, double beta, double* c) {
  if (const blas::OpenBlas* lib = blas::openblas())
    lib->dgemm(CblasRowMajor, op(s.trans_a), op(s.trans_b), int(s.m), int(s.n), int(s.k), alpha, a, int(s.lda), b,
               int(s.ldb), beta, c, int(s.ldc));
  else
    ref::gemm(s, alpha, a, b, beta, c);
}

// Our register-blocked kernel for small f32 products (simd_gemm.inl): no packing of A, no
// library call, no allocation; op(B) must fit its stack panel. Measured one thread, best of 5, on
// attention's products (docs/PERFORMANCE.md): Q K^T (50x50x64, B transposed) ours 114-126
// GFLOP/s vs OpenBLAS SkylakeX 93-123; P V (50x64x50) ours 195-215 vs OpenBLAS 234-244. So ours
// takes the transposed-B products, OpenBLAS the rest (and ours everything if OpenBLAS is missing).
const SimdTable* small_kernel_for(const GemmShape& s) {
  const SimdTable* simd = simd_table();
  if (simd == nullptr || s.m * s.n * s.k > kSmallProduct || s.m > 256) return nullptr;
  if (!s.trans_b && blas::openblas() != nullptr) return nullptr;
  const int64_t lanes = simd_path() == SimdPath::avx512 ? 16 : 8;
  return s.k * ((s.n + lanes - 1) / lanes * lanes) <= kSmallGemmPackFloats ? simd : nullptr;
}

void small(const SimdTable*, const GemmShape&, double, const double*, const double*, double, double*) {}
void small(const SimdTable* simd, const GemmShape& s, float alpha, const float* a, const float* b, float beta,
           float* c) {
  simd->small_gemm(s.trans_a, s.trans_b, s.m, s.n, s.k, alpha, a, s.lda, b, s.ldb, beta, c, s.ldc);
}

std::atomic<int>& precision_setting() {
  static std::atomic<int> precision{static_cast<int>(MatmulPrecision::f32)};
  return precision;
}

// batched<T>'s bf16 branch: f32 products in bf16 precision; f64 never (its bf16() is never called).
bool in_bf16(const float*) { return matmul_precision() == MatmulPrecision::bf16; }
bool in_bf16(const double*) { return false; }
void bf16(const GemmShape&, double, const double*, const double*, double, double*) {}
void bf16(const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c) {
  gemm_bf16(s, alpha, a, b, beta, c);
}

template <class T>
void batched(const GemmShape& s, int64_t batch, T alpha, const T* a, int64_t sa, const T* b, int64_t sb, T beta, T* c,
             int64_t sc) {
  if (batch <= 0 || s.m == 0 || s.n == 0) return;
  const bool independent = sc != 0;  // a shared C must be accumulated in order
  if (in_bf16(a)) {  // one product per thread when small (gemm_bf16 keeps those on the caller's)
    parallel_for(batch, independent && s.m * s.n * s.k <= kSmallProduct ? 1 : batch, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) bf16(s, alpha, a + i * sa, b + i * sb, beta, c + i * sc);
    });
    return;
  }
  const SimdTable* own = std::is_same_v<T, float> && s.k > 0 ? small_kernel_for(s) : nullptr;
  if (independent && own) {
    parallel_for(batch, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) small(own, s, alpha, a + i * sa, b + i * sb, beta, c + i * sc);
    });
    return;
  }
  if (independent && batch > 1 && s.m * s.n * s.k <= kSmallProduct) {
    parallel_for(batch, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) call(s, alpha, a + i * sa, b + i * sb, beta, c + i * sc);
    });
    return;
  }
  for (int64_t i = 0; i < batch; ++i) call(s, alpha, a + i * sa, b + i * sb, beta, c + i * sc);
}

}  // namespace

void gemm(const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c) {
  if (s.m == 0 || s.n == 0) return;
  if (matmul_precision() == MatmulPrecision::bf16) return gemm_bf16(s, alpha, a, b, beta, c);
  call(s, alpha, a, b, beta, c);
}

void gemm_full_precision(const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c) {
  if (s.m == 0 || s.n == 0) return;
  call(s, alpha, a, b, beta, c);
}

void gemm_full_precision(const GemmShape& s, double alpha, const double* a, const double* b, double beta,
                         double* c) {
  gemm(s, alpha, a, b, beta, c);
}

void set_matmul_precision(MatmulPrecision precision) {
  // Resolve the bf16 path now, on the caller's thread: a bad TESSERA_BF16 is reported here, not
  // thrown inside a parallel region by the first product.
  if (precision == MatmulPrecision::bf16) bf16_path();
  precision_setting().store(static_cast<int>(precision), std::memory_order_relaxed);
}

MatmulPrecision matmul_precision() {
  return static_cast<MatmulPrecision>(precision_setting().load(std::memory_order_relaxed));
}

const char* matmul_precision_name(MatmulPrecision precision) {
  return precision == MatmulPrecision::bf16 ? "bf16" : "fp32";
}

MatmulPrecision parse_matmul_precision(const std::string& text) {
  if (text == "fp32") return MatmulPrecision::f32;
  if (text == "bf16") return MatmulPrecision::bf16;
  throw std::invalid_argument("unknown precision '" + text + "' (expected fp32 or bf16)");
}

void gemm(const GemmShape& s, double alpha, const double* a, const double* b, double beta, double* c) {
  if (s.m == 0 || s.n == 0) return;
  call(s, alpha, a, b, beta, c);
}

void gemm_batched(const GemmShape& s, int64_t batch, float alpha, const float* a, int64_t stride_a, const float* b,
                  int64_t stride_b, float beta, float* c, int64_t stride_c) {
  batched(s, batch, alpha, a, stride_a, b, stride_b, beta, c, stride_c);
}

void gemm_batched(const GemmShape& s, int64_t batch, double alpha, const double* a, int64_t stride_a,
                  const double* b, int64_t stride_b, double beta, double* c, int64_t stride_c) {
  batched(s, batch, alpha, a, stride_a, b, stride_b, beta, c, stride_c);
}

const char* gemm_backend_name() {
  static const std::string name = [] {
    std::string ours;  // which products packed_for() gives to our packed GEMM
    if (simd_path() == SimdPath::avx512) ours = "f32 products above 2^21 multiply-adds: ours (packed AVX-512)";
    if (simd_path() == SimdPath::avx2) ours = "f32 products above 2^21 multiply-adds, A not transposed: ours (packed AVX2)";
    if (const blas::OpenBlas* lib = blas::openblas())
      return (ours.empty() ? std::string() : ours + "; other products and f64: ") + "OpenBLAS (" + lib->path +
             "), core " + lib->get_corename() +
             "; small batched products (attention) one per thread, Q K^T-like ones by our SIMD kernel";
    if (!ours.empty())
      return std::string("f32: ours (packed ") + simd_path_name(simd_path()) +
             ", and the small kernel for attention); f64: scalar reference (" + blas::load_error() + ")";
    return std::string("scalar reference GEMM (") + blas::load_error() + ")";
  }();
  return name.c_str();
}

const char* gemm_backend_for(const GemmShape& s) {
  if (packed_for(s)) return "ours (packed)";
  return blas::openblas() ? "OpenBLAS" : "scalar reference";
}

}  // namespace tessera::kernels
