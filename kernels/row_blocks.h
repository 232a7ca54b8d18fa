#pragma once
// How the row and column kernels split work over threads: blocks of whole rows of at least
// ~16K elements, or blocks of 64 columns. Boundaries depend on the sizes only, and each output
// element is computed by one thread in a fixed order, so results do not depend on the thread count.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/cpu.h"
#include "kernels/threads.h"

namespace tessera::kernels {

// Whether the kernel running on this thread writes its output with streaming stores (read by
// softmax, log-softmax, LayerNorm forward's y, cross-entropy's dlogits and transpose; the other
// kernels ignore it). by_row_blocks (and transpose.cpp) set it on each thread for one call only,
// from the size of the whole call's output, which a kernel's block of rows does not know (see
// streaming_store_threshold()).
inline thread_local bool stream_row_output = false;

class StreamRowOutput {  // sets stream_row_output for a scope, then restores it
 public:
  explicit StreamRowOutput(bool on) : saved_(stream_row_output) { stream_row_output = on; }
  ~StreamRowOutput() { stream_row_output = saved_; }
  StreamRowOutput(const StreamRowOutput&) = delete;
  StreamRowOutput& operator=(const StreamRowOutput&) = delete;

 private:
  bool saved_;
};

// Whether one call writing `floats` outputs writes them by streaming stores.
inline bool streams_output(int64_t floats) { return floats * int64_t(sizeof(float)) >= streaming_store_threshold(); }

template <class Fn>
void by_row_blocks(int64_t rows, int64_t cols, Fn&& fn) {  // fn(first_row, row_count)
  const int64_t grain = cols > 0 ? (16384 + cols - 1) / cols : (rows > 0 ? rows : 1);
  const bool stream = streams_output(rows * cols);
  parallel_for(rows, grain, [&](int64_t begin, int64_t end) {
    const StreamRowOutput scope(stream);
    fn(begin, end - begin);
  });
}

// Column sums (dbias, dgamma, dbeta) are taken per block of this many rows while the block is
// still in cache, then the block partials are added in block order: fixed, whatever the threads.
constexpr int64_t kSumBlockRows = 128;

// fn(first_row, row_count, block_index) over fixed blocks of kSumBlockRows rows.
template <class Fn>
void by_sum_blocks(int64_t rows, int64_t cols, Fn&& fn) {
  const int64_t blocks = (rows + kSumBlockRows - 1) / kSumBlockRows;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, kSumBlockRows * cols));
  parallel_for(blocks, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r = b * kSumBlockRows;
      fn(r, std::min(kSumBlockRows, rows - r), b);
    }
  });
}

// Scratch for the block partials, owned by the calling thread and kept between calls, so the
// steady state allocates nothing.
inline float* partials_scratch(int64_t floats) {
  thread_local std::vector<float> buffer;
  if (int64_t(buffer.size()) < floats) buffer.resize(size_t(floats));
  return buffer.data();
}

}  // namespace tessera::kernels
