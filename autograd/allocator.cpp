#include "autograd/allocator.h"

#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace tessera {
namespace {

constexpr size_t kAlignment = 64;

struct Cache {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void*>> free_lists;
  AllocatorStats stats;
};

Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: storage may be released during static teardown
  return *c;
}

// The size class a request of `bytes` is rounded up to. Small sizes round to 64 bytes; larger
// ones to one of four steps per power of two, so that at most a fifth of a buffer is slack while
// sizes that differ slightly still share a list.
size_t storage_size_class(size_t bytes) {
  if (bytes == 0) return kAlignment;
  if (bytes <= 4096) return (bytes + kAlignment - 1) / kAlignment * kAlignment;
  size_t top = 1;
  while ((top << 1) <= bytes) top <<= 1;
  const size_t step = top / 4;
  return (bytes + step - 1) / step * step;
}

}  // namespace

void* storage_allocate(size_t bytes) {
  const size_t size = storage_size_class(bytes);
  Cache& c = cache();
  {
    std::lock_guard lock(c.mutex);
    auto it = c.free_lists.find(size);
    if (it != c.free_lists.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.stats.cache_hits++;
      return p;
    }
    c.stats.system_allocations++;
  }
  void* p = std::aligned_alloc(kAlignment, size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void storage_release(void* ptr, size_t bytes) {
  if (ptr == nullptr) return;
  const size_t size = storage_size_class(bytes);
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  c.free_lists[size].push_back(ptr);
}

AllocatorStats allocator_stats() {
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  return c.stats;
}

}  // namespace tessera
