#include "kernels/threads.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>

#include "kernels/blas.h"

namespace tessera::kernels {
namespace {

int initial_threads() {
  if (const char* env = std::getenv("TESSERA_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return std::min(n, kMaxThreads);  // the commands refuse larger values first (train/experiment.h)
  }
  return std::clamp(omp_get_max_threads(), 1, kMaxThreads);
}

// OpenBLAS follows our count, so the two never oversubscribe the cores.
void set_blas_threads(int n) {
  if (const blas::OpenBlas* lib = blas::openblas()) lib->set_num_threads(n);
}

std::atomic<int>& thread_count() {
  static std::atomic<int> count{[] {
    const int n = initial_threads();
    omp_set_num_threads(n);
    set_blas_threads(n);
    return n;
  }()};
  return count;
}

}  // namespace

void set_num_threads(int n) {
  n = std::clamp(n, 1, kMaxThreads);
  thread_count().store(n);
  omp_set_num_threads(n);
  set_blas_threads(n);
}

int num_threads() { return thread_count().load(); }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int threads = num_threads();
  if (threads == 1 || n < 2 * grain || omp_in_parallel()) {
    fn(0, n);
    return;
  }
  // Boundaries are multiples of the grain, whatever the thread count.
  const int64_t chunks = (n + grain - 1) / grain;
  const int64_t per = grain;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * per;
    const int64_t end = std::min(n, begin + per);
    if (begin < end) fn(begin, end);
  }
}

}  // namespace tessera::kernels
