#pragma once
// The one thread count of the process: ours and OpenBLAS's are kept equal, so the two never
// oversubscribe the cores. Set from the recipe, --threads, or TESSERA_THREADS.
#include <cstdint>
#include <functional>

namespace tessera::kernels {

// The most worker threads Tessera runs (as the recipe's `threads`); more are clamped.
constexpr int kMaxThreads = 1024;
void set_num_threads(int n);
int num_threads();

// Runs fn(begin, end) over [0, n) in chunks of at least `grain` items; a range smaller than two
// grains stays on the calling thread. Chunk boundaries depend on n and grain only.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace tessera::kernels
