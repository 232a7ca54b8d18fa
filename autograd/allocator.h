#pragma once
// A caching allocator for tensor storage. Buffers are 64-byte aligned and, once freed, kept in
// per-size free lists instead of going back to the system: a training step asks for the same
// sizes every time, so after the first step it never calls malloc, and never pays the page
// faults of freshly mapped memory again.
#include <cstddef>
#include <cstdint>

namespace tessera {

struct AllocatorStats {
  uint64_t system_allocations = 0;  // calls that reached the system allocator
  uint64_t cache_hits = 0;          // requests served from a free list
};

void* storage_allocate(size_t bytes);
// `bytes` as given to storage_allocate.
void storage_release(void* ptr, size_t bytes);
AllocatorStats allocator_stats();

}  // namespace tessera
