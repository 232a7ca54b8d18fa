// Streaming (non-temporal) stores: the row kernels and transpose write big outputs with them
// (kernels/cpu.h, streaming_store_threshold()). Forcing the threshold to 0 and to "never", every
// SIMD path must give the same bits, at the tail sizes, with the output at every alignment within
// a cache line, on 1 and 2 threads; the plumbing (who sees the flag, and when) is checked too.
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <limits>

#include "kernels/cpu.h"
#include "kernels/cross_entropy.h"
#include "kernels/layer_norm.h"
#include "kernels/reduce.h"
#include "kernels/row_blocks.h"
#include "kernels/threads.h"
#include "kernels/transpose.h"
#include "kernels/transpose_ref.h"
#include "tests/kernels/kernel_test_util.h"

using namespace tessera::kernels;
using namespace tessera::kernels::testing;

namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

// Restores the default threshold and thread count however a test ends.
struct Restore {
  int threads = num_threads();
  ~Restore() {
    set_streaming_store_threshold(-1);
    set_num_threads(threads);
  }
};

// n floats starting `offset` (< 16) floats past a 64-byte boundary, with 16 floats either side;
// all filled with 9s, so that writes outside the output show up.
struct Out {
  static constexpr int64_t margin = 16;
  std::vector<float> storage;
  float* data;
  Out(int64_t n, int64_t offset) : storage(size_t(n + 4 * margin), 9.0f) {
    const auto address = reinterpret_cast<uintptr_t>(storage.data());
    data = storage.data() + (64 - address % 64) % 64 / sizeof(float) + margin + offset;
  }
};

// Runs fn(out) with streaming stores never and always; both outputs (and the untouched floats
// around them) must be bitwise equal.
template <class Fn>
void same_bits(int64_t n, int64_t offset, const char* what, Fn&& fn) {
  Out normal(n, offset), streamed(n, offset);
  set_streaming_store_threshold(kNever);
  fn(normal.data);
  set_streaming_store_threshold(0);
  fn(streamed.data);
  set_streaming_store_threshold(-1);
  const size_t bytes = size_t(n + 2 * Out::margin) * sizeof(float);
  const bool equal = std::memcmp(normal.data - Out::margin, streamed.data - Out::margin, bytes) == 0;
  BOOST_TEST(equal, what << ": streaming and normal stores differ (" << n << " floats, offset " << offset << ")");
}

const int64_t offsets[] = {0, 1, 5, 15};  // floats past a line boundary

}  // namespace

BOOST_AUTO_TEST_SUITE(streaming_stores)

BOOST_AUTO_TEST_CASE(threshold_and_flag) {
  Restore restore;
  const int64_t llc = last_level_cache_bytes();
  BOOST_TEST(llc >= (int64_t(1) << 20));  // every x86 CPU with AVX2 has at least 1 MiB
  BOOST_TEST(streaming_store_threshold() == llc / 2);
  set_streaming_store_threshold(123);
  BOOST_TEST(streaming_store_threshold() == 123);
  set_streaming_store_threshold(-1);
  BOOST_TEST(streaming_store_threshold() == llc / 2);

  // by_row_blocks sets the flag on every thread that runs a block, for that call only.
  set_num_threads(2);
  for (const int64_t threshold : {int64_t(0), kNever}) {
    set_streaming_store_threshold(threshold);
    std::vector<char> seen(64, 2);
    by_row_blocks(64, 1024, [&](int64_t r, int64_t n) {
      for (int64_t i = r; i < r + n; ++i) seen[size_t(i)] = stream_row_output ? 1 : 0;
    });
    for (const char s : seen) BOOST_TEST(int(s) == (threshold == 0 ? 1 : 0));
    BOOST_TEST(!stream_row_output);  // restored on the calling thread
  }
}

BOOST_AUTO_TEST_CASE(row_kernels_same_bits) {
  Restore restore;
  for (const int threads : {1, 2}) {
    set_num_threads(threads);
    for_each_simd_path([&](SimdPath) {
      std::vector<int64_t> sizes = tail_sizes();
      sizes.push_back(768);
      for (const int64_t cols : sizes) {
        // enough rows for two threads' blocks (16K floats each) on the narrow rows too
        const int64_t rows = cols == 0 ? 3 : std::max<int64_t>(3, 40000 / cols);
        const int64_t n = rows * cols;
        const auto x = random_vector(n, 500 + cols, -8, 8), res = random_vector(n, 501 + cols);
        const auto gamma = random_vector(cols, 502 + cols, 0.5, 1.5), beta = random_vector(cols, 503 + cols);
        std::vector<int64_t> targets(static_cast<size_t>(rows));
        for (int64_t r = 0; r < rows; ++r) targets[size_t(r)] = r % 5 == 1 ? -1 : (r * 7) % std::max<int64_t>(1, cols);
        std::vector<float> stats(size_t(2 * rows) + 1), loss(size_t(rows) + 1);
        for (const int64_t offset : offsets) {
          BOOST_TEST_CONTEXT("threads=" << threads << " rows=" << rows << " cols=" << cols << " offset=" << offset) {
            same_bits(n, offset, "softmax", [&](float* y) { softmax_rows(x.data(), rows, cols, y); });
            same_bits(n, offset, "log_softmax", [&](float* y) { log_softmax_rows(x.data(), rows, cols, y); });
            if (cols == 0) continue;
            same_bits(n, offset, "layer_norm", [&](float* y) {
              layer_norm_forward(x.data(), gamma.data(), beta.data(), rows, cols, 1e-5f, y, stats.data(),
                                 stats.data() + rows);
            });
            same_bits(n, offset, "layer_norm without affine", [&](float* y) {
              layer_norm_forward(x.data() + 1, nullptr, nullptr, rows, cols, 1e-5f, y, stats.data(), stats.data() + rows);
            });
            std::vector<float> sum(static_cast<size_t>(n));
            same_bits(n, offset, "residual + layer_norm", [&](float* y) {
              add_layer_norm_forward(x.data(), res.data(), gamma.data(), beta.data(), rows, cols, 1e-5f, sum.data(), y,
                                     stats.data(), stats.data() + rows);
            });
            same_bits(n, offset, "cross_entropy dlogits", [&](float* d) {
              cross_entropy(x.data(), targets.data(), rows, cols, 0.25f, loss.data(), d);
            });
            // in place: dlogits over the logits themselves
            same_bits(n, offset, "cross_entropy in place", [&](float* d) {
              std::memcpy(d, x.data(), size_t(n) * sizeof(float));
              cross_entropy(d, targets.data(), rows, cols, 0.25f, loss.data(), d);
            });
          }
        }
      }
    });
  }
}

BOOST_AUTO_TEST_CASE(transpose_same_bits) {
  Restore restore;
  for (const int threads : {1, 2}) {
    set_num_threads(threads);
    for_each_simd_path([&](SimdPath) {
      // rows a multiple of 16 with ld_extra 0 or 16 and offset 0: every output row on a line
      // boundary (AVX-512 streams straight from the tiles); else realigned in registers
      // (AVX-512) or through scratch (AVX2). Rows past 256 give each thread a range of several
      // bands; 4097 rows, odd band counts.
      for (const int64_t rows : {0, 1, 7, 15, 16, 17, 31, 33, 48, 300, 320, 1000, 4097})
        for (const int64_t cols : tail_sizes()) {
          if (rows * cols > 700000) continue;
          for (const int64_t ld_extra : {0, 5, 16}) {
            const int64_t ld_in = cols + 3, ld_out = rows + ld_extra;
            const auto in = random_vector(rows * ld_in, 600 + rows + cols);
            for (int64_t offset = 0; offset < 16; ++offset) {  // every alignment within a line
              if (rows * cols > 100000 && offset % 5 != 0 && offset != 1) continue;  // 0, 1, 5, 10, 15
              BOOST_TEST_CONTEXT("threads=" << threads << " rows=" << rows << " cols=" << cols << " ld_out=" << ld_out
                                            << " offset=" << offset) {
                same_bits(cols * ld_out, offset, "transpose",
                          [&](float* out) { transpose(in.data() + 1, rows, cols, ld_in, out, ld_out); });
              }
            }
          }
        }
    });
  }
}

// The streamed transpose against the element-by-element reference directly (same_bits compares
// it with the normal stores, which test_layout compares with the reference).
BOOST_AUTO_TEST_CASE(transpose_streamed_matches_reference) {
  Restore restore;
  set_streaming_store_threshold(0);
  for (const int threads : {1, 2}) {
    set_num_threads(threads);
    for_each_simd_path([&](SimdPath) {
      for (const int64_t rows : {15, 33, 300, 4097})
        for (const int64_t cols : {1, 17, 33, 100}) {
          const int64_t ld_in = cols + 1, ld_out = rows + 3;
          const auto in = random_vector(rows * ld_in, 700 + rows + cols);
          for (const int64_t offset : offsets) {
            Out got(cols * ld_out, offset), want(cols * ld_out, offset);
            transpose(in.data(), rows, cols, ld_in, got.data, ld_out);
            ref::transpose(in.data(), rows, cols, ld_in, want.data, ld_out);
            const size_t bytes = size_t(cols * ld_out + 2 * Out::margin) * sizeof(float);
            BOOST_TEST(std::memcmp(got.data - Out::margin, want.data - Out::margin, bytes) == 0,
                       "threads=" << threads << " rows=" << rows << " cols=" << cols << " offset=" << offset);
          }
        }
    });
  }
}

BOOST_AUTO_TEST_SUITE_END()
