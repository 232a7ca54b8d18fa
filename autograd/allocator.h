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
  uint64_t bytes_in_use = 0;
  uint64_t bytes_cached = 0;        // held in free lists
  uint64_t peak_bytes_in_use = 0;
};

void* storage_allocate(size_t bytes);
void storage_release(void* ptr, size_t bytes);
// The size class a request of `bytes` is rounded up to (what release must be given back).
size_t storage_size_class(size_t bytes);
AllocatorStats allocator_stats();
// Returns every cached buffer to the system.
void empty_storage_cache();

}  // namespace tessera
