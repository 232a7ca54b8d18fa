#pragma once
// Random tensors from a counter-based generator (Philox-4x32-10): element i of a draw depends
// only on the seed, the generator's offset and i, so results do not depend on how many threads
// fill the tensor. A draw advances the offset past every counter it used.
#include <cstdint>

#include "autograd/tensor.h"

namespace tessera {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }  // in 128-bit Philox blocks
  void set_state(uint64_t seed, uint64_t offset) { seed_ = seed, offset_ = offset; }
  // Reserves `blocks` counters and returns the first.
  uint64_t advance(uint64_t blocks) {
    const uint64_t first = offset_;
    offset_ += blocks;
    return first;
  }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// The process-wide generator used when none is given.
Generator& default_generator();
void manual_seed(uint64_t seed);

// Four 32-bit random words for (key, counter).
void philox4x32(uint64_t key, uint64_t counter_hi, uint64_t counter_lo, uint32_t out[4]);

Tensor rand(const Shape& shape, Generator& gen = default_generator(), DType dtype = DType::f32);  // [0, 1)
Tensor uniform(const Shape& shape, double low, double high, Generator& gen = default_generator(),
               DType dtype = DType::f32);
Tensor randn(const Shape& shape, Generator& gen = default_generator(), DType dtype = DType::f32);
Tensor normal(const Shape& shape, double mean, double stddev, Generator& gen = default_generator(),
              DType dtype = DType::f32);
// Integers in [low, high), i64 by default.
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen = default_generator(),
               DType dtype = DType::i64);
// A random permutation of 0..n-1 (i64), reproducible from the generator's state.
Tensor randperm(int64_t n, Generator& gen = default_generator());

}  // namespace tessera
