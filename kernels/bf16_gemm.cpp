#include "kernels/bf16_gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <stdexcept>

#include "kernels/bf16.h"
#include "kernels/bf16_gemm_kernels.h"
#include "kernels/cpu.h"
#include "kernels/gemm_blocking.h"
#include "kernels/threads.h"

namespace tessera::kernels {
namespace {

// Blocking: a kc x nc block of op(B) in bf16 (at most 512 x 1024: 1 MiB, in L2 on either CPU family)
// is packed once and met by every 32-row block of A (32 x 512: 32 KiB, in L1). nc covers all of
// the transformer's n (<= 768), so each block of A is packed once: reading fp32 operands and
// converting them is bound by memory bandwidth and costs about as much as the tiles' work
// (docs/PERFORMANCE.md).
constexpr int64_t kKcMax = 512, kNcMax = 1024;
// Below this many multiply-adds one thread does it all.
constexpr int64_t kThreadedProduct = int64_t(1) << 20;

Bf16Path initial_path() {
  const char* env = std::getenv("TESSERA_BF16");
  if (env == nullptr || *env == '\0') return best_bf16_path();
  Bf16Path forced;
  try {
    forced = parse_bf16_path(env);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("TESSERA_BF16: ") + e.what());
  }
  if (!cpu_supports(forced))
    throw std::runtime_error(std::string("TESSERA_BF16=") + env + ": this CPU cannot run that path (best is " +
                             bf16_path_name(best_bf16_path()) + ")");
  return forced;
}

std::atomic<int>& current_path() {
  static std::atomic<int> path{static_cast<int>(initial_path())};
  return path;
}

// One thread's packing buffers.
struct PackBuffers {
  GrowingBuffer<uint16_t> a, b;
};
PackBuffers& pack_buffers() {
  thread_local PackBuffers buffers;
  return buffers;
}

// The convert path: op(A) and op(B) rounded to bf16 in fp32 copies (in their stored layout), then
// our fp32 GEMM.
void gemm_by_conversion(const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c) {
  thread_local GrowingBuffer<float> scratch_a, scratch_b;  // per thread: batched products run in parallel
  auto rounded = [](GrowingBuffer<float>& scratch, const float* x, int64_t rows, int64_t cols, int64_t ld) {
    float* out = scratch.grow(rows * cols);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) out[i * cols + j] = round_to_bf16(x[i * ld + j]);
    return out;
  };
  GemmShape r = s;
  r.lda = s.trans_a ? s.m : s.k;
  r.ldb = s.trans_b ? s.k : s.n;
  const float* ra = rounded(scratch_a, a, s.trans_a ? s.k : s.m, r.lda, s.lda);
  const float* rb = rounded(scratch_b, b, s.trans_b ? s.n : s.k, r.ldb, s.ldb);
  gemm_full_precision(r, alpha, ra, rb, beta, c);
}

// One thread's rectangle: Goto's loops over blocks of op(B) (nc columns x kc of k, packed once)
// and 32-row blocks of op(A) (packed per block), multiplied by the path's block product. The k
// blocks (fixed by the shape) fix the order of the additions: later blocks add to C.
void gemm_rectangle(bool amx, const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c,
                    int64_t m, int64_t n, int64_t kc) {
  const int64_t nc = balanced(n, kNcMax, kBf16Panel);
  PackBuffers& buf = pack_buffers();
  // A^T (the dW products, k long) is packed for all m rows at once: read along A's rows. Row-major
  // A is packed per 32-row block, which stays in L1 while it meets the B block.
  const int64_t a_rows = s.trans_a ? round_up(m, kBf16Rows) : kBf16Rows;
  uint16_t* a_pack = buf.a.grow(a_rows * round_up(kc, kBf16KStep));
  uint16_t* b_pack = buf.b.grow(round_up(nc, kBf16Panel) * round_up(kc, kBf16KStep));
  auto multiply = amx ? amx::multiply_block : avx512bf16::multiply_block;
  if (amx) amx::configure_tiles();
  for (int64_t jc = 0; jc < n; jc += nc) {
    const int64_t ncur = std::min(nc, n - jc);
    for (int64_t pc = 0; pc < s.k; pc += kc) {
      const int64_t kcur = std::min(kc, s.k - pc), kp = round_up(kcur, kBf16KStep);
      avx512bf16::pack_b(s.trans_b, s.trans_b ? b + jc * s.ldb + pc : b + pc * s.ldb + jc, s.ldb, kcur, ncur, b_pack);
      const float block_beta = pc == 0 ? beta : 1.0f;
      if (s.trans_a) avx512bf16::pack_a(true, a + pc * s.lda, s.lda, m, kcur, a_pack);
      for (int64_t ic = 0; ic < m; ic += kBf16Rows) {
        const int64_t rows = std::min(kBf16Rows, m - ic);
        if (!s.trans_a) avx512bf16::pack_a(false, a + ic * s.lda + pc, s.lda, rows, kcur, a_pack);
        multiply(s.trans_a ? a_pack + ic * kp : a_pack, b_pack, kp, rows, ncur, alpha, block_beta,
                 c + ic * s.ldc + jc, s.ldc);
      }
    }
  }
}


}  // namespace

bool cpu_supports(Bf16Path path) {
  const CpuFeatures& f = cpu_features();
  const bool avx512 = cpu_supports(SimdPath::avx512);
  switch (path) {
    case Bf16Path::convert: return true;
    case Bf16Path::avx512bf16: return avx512 && f.avx512bf16;
    case Bf16Path::amx: return avx512 && f.avx512bf16 && f.amx_tile && f.amx_bf16 && amx::request_tile_permission();
  }
  return false;
}

Bf16Path best_bf16_path() {
  if (cpu_supports(Bf16Path::amx)) return Bf16Path::amx;
  if (cpu_supports(Bf16Path::avx512bf16)) return Bf16Path::avx512bf16;
  return Bf16Path::convert;
}

Bf16Path bf16_path() { return static_cast<Bf16Path>(current_path().load(std::memory_order_relaxed)); }

void set_bf16_path(Bf16Path path) {
  if (!cpu_supports(path))
    throw std::runtime_error(std::string("bf16 path ") + bf16_path_name(path) + " is not supported by this CPU");
  current_path().store(static_cast<int>(path), std::memory_order_relaxed);
}

const char* bf16_path_name(Bf16Path path) {
  switch (path) {
    case Bf16Path::convert: return "convert";
    case Bf16Path::avx512bf16: return "avx512bf16";
    case Bf16Path::amx: return "amx";
  }
  return "?";
}

Bf16Path parse_bf16_path(const std::string& text) {
  if (text == "amx") return Bf16Path::amx;
  if (text == "avx512bf16") return Bf16Path::avx512bf16;
  if (text == "convert") return Bf16Path::convert;
  throw std::invalid_argument("unknown bf16 path '" + text + "' (expected amx, avx512bf16 or convert)");
}

void gemm_bf16(const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c) {
  if (s.m <= 0 || s.n <= 0) return;
  if (s.k <= 0 || alpha == 0.0f) return scale_c(s.m, s.n, beta, c, s.ldc);  // BLAS: A and B unread
  const Bf16Path path = bf16_path();
  if (path == Bf16Path::convert) return gemm_by_conversion(s, alpha, a, b, beta, c);
  const int64_t threads = s.m * s.n * s.k < kThreadedProduct ? 1 : num_threads();
  const Split split = choose_split(s.m, s.n, threads, kBf16Rows, kBf16Panel);
  const int64_t kc = balanced(s.k, kKcMax, kBf16KStep);  // fixed by the shape alone: the order of the additions
  parallel_for(split.tr * split.tc, 1, [&](int64_t first, int64_t last) {
    for (int64_t t = first; t < last; ++t) {
      const int64_t i0 = (t / split.tc) * split.rows, j0 = (t % split.tc) * split.cols;
      if (i0 >= s.m || j0 >= s.n) continue;
      gemm_rectangle(path == Bf16Path::amx, s, alpha, s.trans_a ? a + i0 : a + i0 * s.lda,
                     s.trans_b ? b + j0 * s.ldb : b + j0, beta, c + i0 * s.ldc + j0, std::min(split.rows, s.m - i0),
                     std::min(split.cols, s.n - j0), kc);
    }
  });
}

}  // namespace tessera::kernels
