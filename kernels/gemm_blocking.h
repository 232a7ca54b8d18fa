#pragma once
// What our packed fp32 GEMM and the bf16 GEMM share: block arithmetic, how a product's C is cut into
// one rectangle per thread, per-thread packing buffers, and BLAS's C = beta C when k or alpha is 0.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

namespace tessera::kernels {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }
// size cut into the fewest blocks of at most `most`, of equal size rounded up to `multiple`
// (k = 1000 with most 768 runs as 2 x 500, not 768 + 232).
inline int64_t balanced(int64_t size, int64_t most, int64_t multiple) {
  return round_up(ceil_div(size, ceil_div(size, most)), multiple);
}

// How C is cut into tr x tc rectangles, one per thread: the cut that minimises one thread's
// multiply-adds plus the operand traffic each thread repeats (with a row cut every thread packs
// or reads all of op(B), with a column cut all of op(A)).
// The thin-C dW products (TN 192x768x6400, 192x576x6400) get the column cut (2 x 384 and 2 x 288
// columns). Against it, cutting k into fixed chunks of 1600 or 3200 (scratch C's summed in chunk
// order, the same bits on any thread count) and nc = 768 were measured, 2 threads, best of
// 36-100 calls in alternation: every variant 420-458 GFLOP/s (82-89% of the 514 peak; OpenBLAS
// 403-418), also beside a nice-19 job streaming 64 MiB, so k stays unsplit. The two threads'
// rectangles finish within 10 us of each other (timestamps per thread); the 71-74% seen earlier
// did not come back on a quiet machine and is attributed to load from other jobs.
struct Split {
  int64_t tr = 1, tc = 1, rows = 0, cols = 0;
};

inline Split choose_split(int64_t m, int64_t n, int64_t threads, int64_t mr, int64_t nr) {
  Split best;
  double best_cost = 0;
  for (int64_t tr = 1; tr <= threads; ++tr) {
    if (threads % tr != 0) continue;
    const int64_t tc = threads / tr;
    const int64_t rows = (m + tr - 1) / tr, cols = (n + tc - 1) / tc;
    const int64_t rows_up = (rows + mr - 1) / mr * mr, cols_up = (cols + nr - 1) / nr * nr;
    const double cost = double(rows_up) * double(cols_up) + 16.0 * double(rows_up) + 8.0 * double(cols_up);
    if (best.rows == 0 || cost < best_cost) {
      best = {tr, tc, rows_up, cols_up};
      best_cost = cost;
    }
  }
  return best;
}


// A 64-byte-aligned buffer that only grows: a thread's packing buffer, allocated on its first
// product and never per call.
template <class T>
struct GrowingBuffer {
  struct Free {
    void operator()(T* p) const { ::operator delete(p, std::align_val_t(64)); }
  };
  std::unique_ptr<T, Free> data;
  int64_t size = 0;
  T* grow(int64_t need) {
    if (size < need) {
      data.reset(static_cast<T*>(::operator new(size_t(need) * sizeof(T), std::align_val_t(64))));
      size = need;
    }
    return data.get();
  }
};

// C = beta C (0 where beta is 0, never reading C): a product with k = 0 or alpha = 0, whose A and B
// BLAS leaves unread.
inline void scale_c(int64_t m, int64_t n, float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
}

}  // namespace tessera::kernels
