// Kernel benchmark: GB/s of the memory-bound kernels next to this machine's measured copy
// bandwidth, SIMD vs the scalar reference on cache-resident arrays, and GFLOP/s of GEMM on the
// transformer shapes next to the FMA peak measured here. Prints markdown tables
// (docs/PERFORMANCE.md, "Kernels"). Every figure is the best of several repetitions, because the
// machine is shared. Usage:
//   kernel_bench [--quick] [--gemm | --bf16 | --memory] [--threads N] [--mib M] [--filter TEXT] [--no-streaming]
// default 2 threads; M MiB per array for the out-of-cache figures (default 256, 8x a 32 MiB L3);
// --filter runs only the memory-bound kernels whose name contains TEXT; --no-streaming writes
// every output by ordinary stores (streaming_store_threshold() never reached), for an A/B run.
#include <fmt/format.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/adamw.h"
#include "kernels/bf16_gemm.h"
#include "kernels/bias_act.h"
#include "kernels/cpu.h"
#include "kernels/cross_entropy.h"
#include "kernels/elementwise.h"
#include "kernels/blas.h"
#include "kernels/gemm.h"
#include "kernels/layer_norm.h"
#include "kernels/packed_gemm.h"
#include "kernels/reduce.h"
#include "kernels/threads.h"
#include "kernels/transpose.h"

using namespace tessera::kernels;

namespace {

// 64-byte aligned, as Tensor storage is (autograd/allocator.cpp): rows of 768 floats then start
// on cache lines, and no vector load straddles two lines.
template <class T>
struct Aligned64 {
  using value_type = T;
  Aligned64() = default;
  template <class U>
  Aligned64(const Aligned64<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  bool operator==(const Aligned64&) const { return true; }
};
using Floats = std::vector<float, Aligned64<float>>;

int repetitions = 15;
int64_t big_mib = 256;   // per array, out of cache
std::string only;        // --filter

// Best seconds per call of fn over `repetitions` timed runs of >= 5 ms each (short runs catch
// the quiet moments of a shared machine).
// Calls of fn per timing, after one warm-up call (pages mapped, caches, OpenBLAS buffers): doubled
// until a timing lasts over 5 ms, so that the clock's resolution does not matter.
int calls_per_timing(const std::function<void()>& fn) {
  fn();
  for (int calls = 1;; calls *= 2) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) fn();
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > 0.005) return calls;
  }
}

// Seconds per call of `calls` calls of fn in a row.
double seconds_per_call(const std::function<void()>& fn, int calls) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / calls;
}

double best_seconds(const std::function<void()>& fn) {
  const int calls = calls_per_timing(fn);
  double best = 1e30;
  for (int r = 0; r < repetitions; ++r) best = std::min(best, seconds_per_call(fn, calls));
  return best;
}

Floats filled(int64_t n, float low, float high, uint64_t seed) {
  std::mt19937 gen{static_cast<uint32_t>(seed)};
  std::uniform_real_distribution<float> d(low, high);
  Floats v(static_cast<size_t>(n));
  for (auto& x : v) x = d(gen);
  return v;
}

// Copy bandwidth: each thread copies its half, either by one memcpy or by memcpy's of 64 KiB; the
// better of the two is the yardstick. bytes = read + written. (glibc would switch to non-temporal
// stores above its x86_non_temporal_threshold, but on this VM it takes the L3 for 384 MiB and sets
// that at 288 MiB, so both forms copy by rep movsb here: `ld.so --list-tunables`.)
double copy_gbs(int64_t n, int threads) {
  Floats a = filled(n, 0, 1, 1), b(static_cast<size_t>(n));
  double best = 0;
  for (const int64_t chunk : {n, int64_t(16384)}) {
    const double s = best_seconds([&] {
#pragma omp parallel for schedule(static) num_threads(threads)
      for (int t = 0; t < threads; ++t) {
        const int64_t lo = n * t / threads, hi = n * (t + 1) / threads;
        for (int64_t i = lo; i < hi; i += chunk)
          std::memcpy(b.data() + i, a.data() + i, size_t(std::min(chunk, hi - i)) * sizeof(float));
      }
    });
    best = std::max(best, 2.0 * double(n) * sizeof(float) / s / 1e9);
  }
  return best;
}

// The second yardstick: a copy by streaming (non-temporal) stores of whole lines, which skip the
// read of each output line that an ordinary store does first, as the row kernels and transpose
// do for big outputs (streaming_store_threshold()). Printed next to memcpy; memcpy stays the bar.
__attribute__((target("avx2"))) void stream_copy(const float* a, float* b, int64_t lo, int64_t hi) {
  int64_t i = lo;
  for (; i < hi && reinterpret_cast<uintptr_t>(b + i) % 64 != 0; ++i) b[i] = a[i];
  for (; i + 16 <= hi; i += 16) {
    _mm256_stream_ps(b + i, _mm256_loadu_ps(a + i));
    _mm256_stream_ps(b + i + 8, _mm256_loadu_ps(a + i + 8));
  }
  for (; i < hi; ++i) b[i] = a[i];
  _mm_sfence();
}

double stream_copy_gbs(int64_t n, int threads) {
  Floats a = filled(n, 0, 1, 1), b(static_cast<size_t>(n));
  const double s = best_seconds([&] {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int t = 0; t < threads; ++t) stream_copy(a.data(), b.data(), n * t / threads, n * (t + 1) / threads);
  });
  return 2.0 * double(n) * sizeof(float) / s / 1e9;
}

// FMA peak: independent FMA chains per thread, on the widest vectors this CPU runs (AVX-512, or
// AVX2 on CPUs without it, as AMD Zen 3). Zen 5 has two 512-bit FMA pipes with a 4-cycle latency,
// so at least 8 chains are needed; 24 also leave room for the loop itself.
template <int chains>
__attribute__((target("avx512f,fma"), noinline)) float fma_chains_avx512(int64_t iters) {
  __m512 acc[chains];
  for (int k = 0; k < chains; ++k) acc[k] = _mm512_set1_ps(float(k) * 1e-3f);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 32
    for (int k = 0; k < chains; ++k) acc[k] = _mm512_fmadd_ps(acc[k], a, b);
  }
  __m512 sum = acc[0];
  for (int k = 1; k < chains; ++k) sum = _mm512_add_ps(sum, acc[k]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, sum);
  return lanes[0];
}

// The same on 256-bit vectors; 12 chains (of the 16 ymm registers) cover two pipes of latency 4-5.
template <int chains>
__attribute__((target("avx2,fma"), noinline)) float fma_chains_avx2(int64_t iters) {
  __m256 acc[chains];
  for (int k = 0; k < chains; ++k) acc[k] = _mm256_set1_ps(float(k) * 1e-3f);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 32
    for (int k = 0; k < chains; ++k) acc[k] = _mm256_fmadd_ps(acc[k], a, b);
  }
  __m256 sum = acc[0];
  for (int k = 1; k < chains; ++k) sum = _mm256_add_ps(sum, acc[k]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  return lanes[0];
}

// The vectors the peak is measured on: AVX-512 where the CPU has it, else AVX2.
struct FmaVectors {
  const char* name;
  int flops_per_fma;  // lanes x 2
  int chains;
  float (*run)(int64_t iters);
};
const FmaVectors& fma_vectors() {
  static const FmaVectors vectors = cpu_supports(SimdPath::avx512) ? FmaVectors{"AVX-512", 32, 24, fma_chains_avx512<24>}
                                                                   : FmaVectors{"AVX2", 16, 12, fma_chains_avx2<12>};
  return vectors;
}

// FMA instructions per cycle on one core, which does not depend on the (boost) clock: the clock
// comes from a chain of dependent integer adds (one per cycle on any x86 core), timed in
// alternation with the FMA chains so that both best times come from the same quiet moments.
struct PerCycle {
  double ghz, fma_per_cycle;
};

PerCycle fma_per_cycle() {
  const int64_t add_iters = 600000, fma_iters = 500000;  // ~12M and ~6M cycles: short windows
  uint64_t x = 0;
  volatile float sink = 0;
  double add_s = 1e30, fma_s = 1e30;
  const FmaVectors& v = fma_vectors();
  for (int r = 0; r < 2 * repetitions; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < add_iters; ++i) __asm__ volatile(".rept 20\n\tadd $1, %0\n\t.endr" : "+r"(x));
    auto t1 = std::chrono::steady_clock::now();
    sink = sink + v.run(fma_iters);
    auto t2 = std::chrono::steady_clock::now();
    add_s = std::min(add_s, std::chrono::duration<double>(t1 - t0).count());
    fma_s = std::min(fma_s, std::chrono::duration<double>(t2 - t1).count());
  }
  const double ghz = double(add_iters) * 20 / add_s / 1e9;
  return {ghz, double(fma_iters) * v.chains / fma_s / 1e9 / ghz};
}

double fma_peak_gflops(int threads) {
  const int64_t iters = 1000000;  // ~6 ms per thread: short runs catch unshared time slices
  const FmaVectors& v = fma_vectors();
  volatile float sink = 0;
  const double s = best_seconds([&] {
#pragma omp parallel num_threads(threads)
    sink = sink + v.run(iters);
  });
  return double(threads) * double(iters) * v.chains * v.flops_per_fma / s / 1e9;
}

struct MemKernel {
  std::string name;
  double bytes_per_element;  // bytes read + written per element of n
  std::function<void(int64_t)> run;  // on arrays of n elements (prepared in setup)
  std::function<void(int64_t)> setup;
};

// Buffers shared by the memory-bound kernels, sized for the largest n.
struct Buffers {
  Floats a, b, c, d, e;
  Floats small_rows;
  std::vector<int64_t> targets;
  void ensure(int64_t n) {
    if (int64_t(a.size()) >= n) return;
    a = filled(n, -3, 3, 2), b = filled(n, -1, 1, 3), c = filled(n, 0, 0.01f, 4), d = filled(n, -1, 1, 5);
    e.assign(static_cast<size_t>(n), 0.0f);
    small_rows.assign(static_cast<size_t>(n / 64 + 1024), 0.0f);  // per-row results, or one row
    targets.assign(static_cast<size_t>(n / 64 + 1), 3);
  }
};

std::vector<MemKernel> memory_kernels(Buffers& B) {
  const int64_t cols = 768;  // row kernels: transformer width
  std::vector<MemKernel> k;
  k.push_back({"copy_2d [n/768,768]", 8, [&](int64_t n) { copy_2d(B.a.data(), n / cols, cols, cols, B.e.data(), cols); }, {}});
  k.push_back({"add (binary)", 12, [&](int64_t n) { binary(BinaryOp::add, B.a.data(), 1, B.b.data(), 1, B.e.data(), n); }, {}});
  k.push_back({"axpy", 12, [&](int64_t n) { axpy(0.5f, B.a.data(), B.e.data(), n); }, {}});
  k.push_back({"exp (unary)", 8, [&](int64_t n) { unary(UnaryOp::exp, B.a.data(), B.e.data(), n); }, {}});
  k.push_back({"gelu erf (unary)", 8, [&](int64_t n) { unary(UnaryOp::gelu_erf, B.a.data(), B.e.data(), n); }, {}});
  k.push_back({"gelu erf backward", 16, [&](int64_t n) {
                 unary_backward(UnaryOp::gelu_erf, B.a.data(), B.b.data(), B.d.data(), B.e.data(), n);
               }, {}});
  k.push_back({"bias+gelu fwd [n/768,768]", 8, [&](int64_t n) {
                 bias_act_forward(Activation::gelu_erf, B.a.data(), B.b.data(), n / cols, cols, B.e.data());
               }, {}});
  k.push_back({"bias+gelu bwd (+dbias)", 12, [&](int64_t n) {
                 bias_act_backward(Activation::gelu_erf, B.a.data(), B.b.data(), B.d.data(), n / cols, cols, B.e.data(),
                                   B.small_rows.data());
               }, {}});
  k.push_back({"sum_rows [n/768,768]", 4, [&](int64_t n) { sum_rows(B.a.data(), n / cols, cols, B.small_rows.data()); }, {}});
  k.push_back({"softmax_rows [n/768,768]", 8, [&](int64_t n) { softmax_rows(B.a.data(), n / cols, cols, B.e.data()); }, {}});
  k.push_back({"layer_norm fwd [n/768,768]", 8, [&](int64_t n) {
                 layer_norm_forward(B.a.data(), B.b.data(), B.d.data(), n / cols, cols, 1e-5f, B.e.data(),
                                    B.small_rows.data(), B.small_rows.data() + n / cols);
               }, {}});
  k.push_back({"residual+layer_norm fwd", 16, [&](int64_t n) {
                 add_layer_norm_forward(B.a.data(), B.b.data(), nullptr, nullptr, n / cols, cols, 1e-5f, B.c.data(),
                                        B.e.data(), B.small_rows.data(), B.small_rows.data() + n / cols);
               }, {}});
  k.push_back({"layer_norm bwd (+dgamma,dbeta)", 12, [&](int64_t n) {
                 // mean/rstd from small_rows; two passes over x and dy (rows, then columns)
                 layer_norm_backward(B.a.data(), B.b.data(), B.small_rows.data(), B.small_rows.data() + n / cols,
                                     B.d.data(), n / cols, cols, B.e.data(), B.c.data(), B.c.data() + cols);
               }, [&](int64_t n) {
                 layer_norm_forward(B.a.data(), nullptr, nullptr, n / cols, cols, 1e-5f, B.e.data(),
                                    B.small_rows.data(), B.small_rows.data() + n / cols);
               }});
  k.push_back({"cross_entropy+dlogits [n/768,768]", 8, [&](int64_t n) {
                 cross_entropy(B.a.data(), B.targets.data(), n / cols, cols, 1.0f, B.small_rows.data(), B.e.data());
               }, {}});
  k.push_back({"adamw", 28, [&](int64_t n) {
                 AdamWHyper h;
                 adamw_update(B.e.data(), B.b.data(), B.d.data(), B.c.data(), n, h);
               }, {}});
  k.push_back({"transpose [n/768,768]", 8, [&](int64_t n) { transpose(B.a.data(), n / cols, cols, cols, B.e.data(), n / cols); }, {}});
  return k;
}

// Each kernel at 1 thread and at the configured count: on a shared machine an OpenMP region can
// wait for a descheduled thread, so both are shown; the yardstick is the better of the two
// measured copy bandwidths.
void memory_table() {
  Buffers B;
  const int64_t big = (big_mib << 20) / 4 / 768 * 768;  // whole rows of 768
  const int64_t small = 768 * 16;                      // 48 KiB per array: L1/L2-resident
  B.ensure(big);
  const int threads = num_threads();
  const double copy1 = copy_gbs(big, 1), copyn = copy_gbs(big, threads);
  const double copy = std::max(copy1, copyn);
  fmt::print("\n## Memory-bound kernels\n\n");
  const double stream1 = stream_copy_gbs(big, 1), streamn = stream_copy_gbs(big, threads);
  fmt::print("Copy bandwidth measured here ({} MiB arrays, read + write; the better of one memcpy and of "
             "64 KiB memcpys): **{:.1f} GB/s** on 1 thread, **{:.1f} GB/s** on {} threads (the bar below). "
             "A copy by streaming stores: {:.1f} GB/s on 1 thread, {:.1f} GB/s on {} threads. {} (last-level "
             "cache {} MiB).\n\n",
             big * 4 >> 20, copy1, copyn, threads, stream1, streamn, threads,
             streaming_store_threshold() == std::numeric_limits<int64_t>::max()
                 ? std::string("Streaming stores off (--no-streaming)")
                 : fmt::format("Outputs of at least {} MiB per call are written by streaming stores",
                               streaming_store_threshold() >> 20),
             last_level_cache_bytes() >> 20);
  fmt::print("| kernel | GB/s 1 thread | GB/s {} threads | best, % of copy | cache-resident SIMD vs scalar (1 thread) |\n",
             threads);
  fmt::print("|---|---:|---:|---:|---:|\n");
  const SimdPath best = simd_path();  // TESSERA_SIMD=avx2 measures that path
  for (MemKernel& k : memory_kernels(B)) {
    if (!only.empty() && k.name.find(only) == std::string::npos) continue;
    set_simd_path(best);
    double gbs[2];
    for (int t = 0; t < 2; ++t) {
      set_num_threads(t == 0 ? 1 : threads);
      if (k.setup) k.setup(big);
      gbs[t] = k.bytes_per_element * double(big) / best_seconds([&] { k.run(big); }) / 1e9;
    }
    set_num_threads(1);
    if (k.setup) k.setup(small);
    const double s_simd = best_seconds([&] { k.run(small); });
    set_simd_path(SimdPath::scalar);
    if (k.setup) k.setup(small);
    const double s_scalar = best_seconds([&] { k.run(small); });
    set_simd_path(best);
    set_num_threads(threads);
    fmt::print("| {} | {:.1f} | {:.1f} | {:.0f}% | {:.1f}x |\n", k.name, gbs[0], gbs[1],
               100 * std::max(gbs[0], gbs[1]) / copy, s_scalar / s_simd);
  }
}

// Best seconds per call of fa and of fb, timed in alternation (2 x repetitions runs of each), so
// that a busy moment on the shared machine slows both and their ratio stays fair.
std::pair<double, double> best_seconds_alternating(const std::function<void()>& fa, const std::function<void()>& fb) {
  const int ca = calls_per_timing(fa), cb = calls_per_timing(fb);
  double a = 1e30, b = 1e30;
  for (int r = 0; r < 2 * repetitions; ++r) {
    a = std::min(a, seconds_per_call(fa, ca));
    b = std::min(b, seconds_per_call(fb, cb));
  }
  return {a, b};
}

// The transformer's Linear layers (in -> out): their forward product and both backward ones, on
// M rows of random data.
constexpr int64_t kLinearShapes[][2] = {{192, 576}, {192, 768}, {768, 192}, {576, 192}, {768, 768}};
struct LinearProducts {
  struct Case {
    const char* name;
    GemmShape s;
    const float *a, *b;
    float* c;
  };
  Floats x, w, dy;
  Floats y, dx, dw;  // outputs, written through cases[].c
  std::vector<Case> cases;
  LinearProducts(const LinearProducts&) = delete;  // cases point into this object
  LinearProducts(int64_t rows, int64_t in, int64_t out)
      : x(filled(rows * in, -1, 1, 7)), w(filled(out * in, -1, 1, 8)), dy(filled(rows * out, -1, 1, 9)),
        y(size_t(rows * out)), dx(size_t(rows * in)), dw(size_t(out * in)) {
    cases = {{"forward  Y = X W^T (NT)", {false, true, rows, out, in, in, in, out}, x.data(), w.data(), y.data()},
             {"backward dX = dY W (NN)", {false, false, rows, in, out, out, in, in}, dy.data(), w.data(), dx.data()},
             {"backward dW = dY^T X (TN)", {true, false, out, in, rows, out, in, in}, dy.data(), x.data(), dw.data()}};
  }
};

void gemm_table(bool quick) {
  const int threads = num_threads();
  const double peak1 = fma_peak_gflops(1), peakn = fma_peak_gflops(threads);
  const double peak = std::max(peakn, threads * peak1);  // a descheduled thread must not lower the bar
  fmt::print("\n## GEMM, backend: {}\n\n", gemm_backend_name());
  const PerCycle pc = fma_per_cycle();
  const FmaVectors& v = fma_vectors();
  fmt::print("FMA peak measured here ({}): **{:.0f} GFLOP/s** on 1 thread, **{:.0f}** on {} threads; "
             "the bar below is {:.0f} ({} x the 1-thread figure, or the {}-thread one if higher).\n"
             "Per core: {:.2f} {} FMA instructions per cycle at {:.2f} GHz (clock from dependent adds), "
             "i.e. {:.0f} GFLOP/s per core at that clock.\n\n",
             v.name, peak1, peakn, threads, peak, threads, threads, pc.fma_per_cycle, v.name, pc.ghz,
             pc.fma_per_cycle * v.flops_per_fma * pc.ghz);
  fmt::print("gemm() is what the dispatcher runs; then ours (packed_gemm.h) and OpenBLAS called directly, timed in "
             "alternation, on 1 and {} threads; \"picks\" is the dispatcher's choice.\n\n", threads);
  fmt::print("| Linear (in -> out), M=6400 | product | m x n x k | GFLOP/s 1 thread | GFLOP/s {} threads | "
             "% of {}-thread peak | ours 1 thr | OpenBLAS 1 thr | ours {} thr | OpenBLAS {} thr | ours/OpenBLAS {} thr | "
             "% of peak ours / OpenBLAS | picks |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
             threads, threads, threads, threads, threads);
  const blas::OpenBlas* lib = blas::openblas();
  const int64_t rows = quick ? 1600 : 6400;
  for (const auto& [in, out] : kLinearShapes) {
    const LinearProducts products(rows, in, out);
    for (const LinearProducts::Case& c : products.cases) {
      const double flops = 2.0 * double(c.s.m * c.s.n * c.s.k);
      set_num_threads(1);
      const double gf1 = flops / best_seconds([&] { gemm(c.s, 1.0f, c.a, c.b, 0.0f, c.c); }) / 1e9;
      set_num_threads(threads);
      const double gfn = flops / best_seconds([&] { gemm(c.s, 1.0f, c.a, c.b, 0.0f, c.c); }) / 1e9;
      auto ours = [&] { packed_gemm(c.s, 1.0f, c.a, c.b, 0.0f, c.c); };
      auto theirs = [&] {
        lib->sgemm(CblasRowMajor, c.s.trans_a ? CblasTrans : CblasNoTrans, c.s.trans_b ? CblasTrans : CblasNoTrans,
                   int(c.s.m), int(c.s.n), int(c.s.k), 1.0f, c.a, int(c.s.lda), c.b, int(c.s.ldb), 0.0f, c.c,
                   int(c.s.ldc));
      };
      double o1 = 0, b1 = 0, on = 0, bn = 0;
      if (lib && packed_gemm_available()) {
        set_num_threads(1);
        const auto [so1, sb1] = best_seconds_alternating(ours, theirs);
        set_num_threads(threads);
        const auto [son, sbn] = best_seconds_alternating(ours, theirs);
        o1 = flops / so1 / 1e9, b1 = flops / sb1 / 1e9, on = flops / son / 1e9, bn = flops / sbn / 1e9;
      }
      fmt::print("| {} -> {} | {} | {}x{}x{} | {:.0f} | {:.0f} | {:.0f}% | {:.0f} | {:.0f} | {:.0f} | {:.0f} | {:.2f} | "
                 "{:.0f}% / {:.0f}% | {} |\n",
                 in, out, c.name, c.s.m, c.s.n, c.s.k, gf1, gfn, 100 * gfn / peak, o1, b1, on, bn, bn > 0 ? on / bn : 0.0,
                 100 * on / peak, 100 * bn / peak, gemm_backend_for(c.s));
    }
  }
  // Attention: batch x heads products of 50 tokens x 64 dims.
  fmt::print("\n| attention (192 products of 50 tokens, 64 dims) | gemm_batched 1 thread | gemm_batched {} threads | "
             "OpenBLAS one call after another, {} threads |\n|---|---:|---:|---:|\n", threads, threads);
  const int64_t batch = 192, t = 50, d = 64;
  const auto q = filled(batch * t * d, -1, 1, 10), kk = filled(batch * t * d, -1, 1, 11);
  std::vector<float> sc(size_t(batch * t * t)), o(size_t(batch * t * d));
  struct Att {
    const char* name;
    GemmShape s;
    const float *a, *b;
    float* c;
    int64_t sa, sb, sc;
  };
  const Att atts[] = {
      {"scores S = Q K^T (50x50x64, NT)", {false, true, t, t, d, d, d, t}, q.data(), kk.data(), sc.data(), t * d, t * d, t * t},
      {"output O = P V (50x64x50, NN)", {false, false, t, d, t, t, d, d}, sc.data(), kk.data(), o.data(), t * t, t * d, t * d},
  };
  for (const Att& a : atts) {
    const double flops = 2.0 * double(batch * a.s.m * a.s.n * a.s.k);
    auto batched = [&] { gemm_batched(a.s, batch, 1.0f, a.a, a.sa, a.b, a.sb, 0.0f, a.c, a.sc); };
    set_num_threads(1);
    const double s1 = best_seconds(batched);
    set_num_threads(threads);
    const double sn = best_seconds(batched);
    const double s2 = best_seconds([&] {
      for (int64_t i = 0; i < batch; ++i) gemm(a.s, 1.0f, a.a + i * a.sa, a.b + i * a.sb, 0.0f, a.c + i * a.sc);
    });
    fmt::print("| {} | {:.0f} | {:.0f} | {:.0f} |\n", a.name, flops / s1 / 1e9, flops / sn / 1e9, flops / s2 / 1e9);
  }
}

// bf16 products (bf16_gemm.h) on each path this CPU has, against fp32 gemm(), on the Linear shapes
// and attention's batched products.
void bf16_table(bool quick) {
  const int threads = num_threads();
  fmt::print("\n## bf16 GEMM (bf16 operands, fp32 sums), GFLOP/s on {} threads; best path here: {}\n\n", threads,
             bf16_path_name(best_bf16_path()));
  std::vector<Bf16Path> paths;
  for (Bf16Path p : {Bf16Path::amx, Bf16Path::avx512bf16, Bf16Path::convert})
    if (cpu_supports(p)) paths.push_back(p);
  fmt::print("| product | m x n x k | fp32 gemm()");
  for (Bf16Path p : paths) fmt::print(" | {}", bf16_path_name(p));
  fmt::print(" | best bf16 / fp32 |\n|---|---|---:");
  for (size_t i = 0; i <= paths.size(); ++i) fmt::print("|---:");
  fmt::print("|\n");
  const Bf16Path saved = bf16_path();
  auto row = [&](const std::string& name, const GemmShape& s, int64_t batch, const float* a, int64_t sa,
                 const float* b, int64_t sb, float* c, int64_t sc) {
    const double flops = 2.0 * double(batch * s.m * s.n * s.k);
    auto run = [&] { gemm_batched(s, batch, 1.0f, a, sa, b, sb, 0.0f, c, sc); };
    set_matmul_precision(MatmulPrecision::f32);
    const double f32 = flops / best_seconds(run) / 1e9;
    fmt::print("| {} | {}{}x{}x{} | {:.0f}", name, batch > 1 ? fmt::format("{} x ", batch) : "", s.m, s.n, s.k, f32);
    set_matmul_precision(MatmulPrecision::bf16);
    double best = 0;
    for (Bf16Path p : paths) {
      set_bf16_path(p);
      const double g = flops / best_seconds(run) / 1e9;
      best = std::max(best, g);
      fmt::print(" | {:.0f}", g);
    }
    fmt::print(" | {:.2f} |\n", best / f32);
    set_matmul_precision(MatmulPrecision::f32);
  };
  const int64_t rows = quick ? 1600 : 6400;
  for (const auto& [in, out] : kLinearShapes) {
    const LinearProducts products(rows, in, out);
    for (const LinearProducts::Case& c : products.cases)
      row(fmt::format("{} -> {} {}", in, out, c.name), c.s, 1, c.a, 0, c.b, 0, c.c, 0);
  }
  const int64_t batch = 192, t = 50, d = 64;
  const auto q = filled(batch * t * d, -1, 1, 10), kk = filled(batch * t * d, -1, 1, 11);
  std::vector<float> sc(size_t(batch * t * t)), o(size_t(batch * t * d));
  row("attention S = Q K^T (NT)", {false, true, t, t, d, d, d, t}, batch, q.data(), t * d, kk.data(), t * d,
      sc.data(), t * t);
  row("attention O = P V (NN)", {false, false, t, d, t, t, d, d}, batch, sc.data(), t * t, kk.data(), t * d,
      o.data(), t * d);
  set_bf16_path(saved);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, gemm_only = false, memory_only = false, bf16_only = false;
  int threads = 2;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick") {
      quick = true;
      repetitions = 5;
      big_mib = 64;
    } else if (arg == "--mib" && i + 1 < argc) {
      big_mib = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--filter" && i + 1 < argc) {
      only = argv[++i];
    } else if (arg == "--gemm") {
      gemm_only = true;
    } else if (arg == "--bf16") {
      bf16_only = true;
    } else if (arg == "--memory") {
      memory_only = true;
    } else if (arg == "--threads" && i + 1 < argc) {
      threads = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--no-streaming") {
      set_streaming_store_threshold(std::numeric_limits<int64_t>::max());
    } else {
      fmt::print(stderr, "usage: kernel_bench [--quick] [--gemm | --bf16 | --memory] [--threads N] [--mib M] "
                         "[--filter TEXT] [--no-streaming]\n");
      return 2;
    }
  }
  set_num_threads(threads);
  fmt::print("# Tessera kernel benchmark\n\ncpu: {}; simd path: {}; threads: {}; best of {} repetitions\n",
             cpu_features().brand, simd_path_name(simd_path()), threads, repetitions);
  if (bf16_only) {
    bf16_table(quick);
    return 0;
  }
  if (!memory_only) gemm_table(quick);
  if (!memory_only) bf16_table(quick);
  if (!gemm_only) memory_table();
  return 0;
}
