#include "kernels/transpose.h"

#include <algorithm>
#include <cstring>

#include "kernels/row_blocks.h"  // StreamRowOutput, streams_output
#include "kernels/simd_table.h"
#include "kernels/threads.h"
#include "kernels/transpose_ref.h"

namespace tessera::kernels {
namespace {

// Bands of 64 input rows (64 output columns): a band's tiles stay in L1/L2 on both sides. Big
// outputs (streaming stores, see streaming_store_threshold()) give each thread one range of whole
// bands of 256 rows: each output row then has partial lines (ordinary stores) only at the ends
// of a thread's range, and no line is written by two threads but at those ends.
constexpr int64_t kBand = 64, kStreamBand = 256;

template <class Fn>
void by_bands(int64_t rows, int64_t cols, int64_t rows_per_band, Fn&& fn) {
  const int64_t bands = (rows + rows_per_band - 1) / rows_per_band;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, rows_per_band * cols));
  parallel_for(bands, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r = b * rows_per_band, n = std::min(rows_per_band, rows - r);
      fn(r, n);
    }
  });
}

}  // namespace

void transpose(const float* in, int64_t rows, int64_t cols, int64_t ld_in, float* out, int64_t ld_out) {
  const SimdTable* s = simd_table();
  const bool stream = s != nullptr && streams_output(rows * cols);
  if (stream) {  // one range of whole bands per thread: partial output lines only at its two ends
    const int64_t bands = (rows + kStreamBand - 1) / kStreamBand;
    const int64_t threads = num_threads(), per_thread = (bands + threads - 1) / threads;
    parallel_for(threads, 1, [&](int64_t t0, int64_t t1) {
      const StreamRowOutput scope(true);
      const int64_t r = std::min(t0 * per_thread * kStreamBand, rows);
      const int64_t n = std::min(t1 * per_thread * kStreamBand, rows) - r;
      if (n > 0) s->transpose(in + r * ld_in, n, cols, ld_in, out + r, ld_out);
    });
    return;
  }
  by_bands(rows, cols, kBand, [&](int64_t r, int64_t n) {
    if (s)
      s->transpose(in + r * ld_in, n, cols, ld_in, out + r, ld_out);
    else
      ref::transpose(in + r * ld_in, n, cols, ld_in, out + r, ld_out);
  });
}

void transpose(const double* in, int64_t rows, int64_t cols, int64_t ld_in, double* out, int64_t ld_out) {
  ref::transpose(in, rows, cols, ld_in, out, ld_out);
}

template <class T>
void copy_rows(const T* in, int64_t rows, int64_t cols, int64_t ld_in, T* out, int64_t ld_out) {
  if (cols <= 0) return;
  const int64_t grain = std::max<int64_t>(1, 16384 / cols);
  parallel_for(rows, grain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) std::memcpy(out + r * ld_out, in + r * ld_in, size_t(cols) * sizeof(T));
  });
}

void copy_2d(const float* in, int64_t rows, int64_t cols, int64_t ld_in, float* out, int64_t ld_out) {
  copy_rows(in, rows, cols, ld_in, out, ld_out);
}
void copy_2d(const double* in, int64_t rows, int64_t cols, int64_t ld_in, double* out, int64_t ld_out) {
  copy_rows(in, rows, cols, ld_in, out, ld_out);
}

}  // namespace tessera::kernels
