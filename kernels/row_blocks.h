#pragma once
// How the row and column kernels split work over threads: blocks of whole rows of at least
// ~16K elements, or blocks of 64 columns. Boundaries depend on the sizes only, and each output
// element is computed by one thread in a fixed order, so results do not depend on the thread count.
#include <cstdint>

#include "kernels/threads.h"

namespace tessera::kernels {

template <class Fn>
void by_row_blocks(int64_t rows, int64_t cols, Fn&& fn) {  // fn(first_row, row_count)
  const int64_t grain = cols > 0 ? (16384 + cols - 1) / cols : (rows > 0 ? rows : 1);
  parallel_for(rows, grain, [&](int64_t begin, int64_t end) { fn(begin, end - begin); });
}

template <class Fn>
void by_column_blocks(int64_t cols, Fn&& fn) {  // fn(first_col, col_count)
  parallel_for(cols, 64, [&](int64_t begin, int64_t end) { fn(begin, end - begin); });
}

}  // namespace tessera::kernels
