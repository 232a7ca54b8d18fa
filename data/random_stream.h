#pragma once
// A stream of random numbers that is a pure function of (key, stream): Philox-4x32 counters
// 0, 1, 2 ... under that key. Scene generation keys one stream per scene, so a scene does not
// depend on which thread made it or on the scenes before it.
#include <cstdint>

#include "autograd/random.h"

namespace tessera::data {

class RandomStream {
 public:
  RandomStream(uint64_t key, uint64_t stream) : key_(key), stream_(stream) {}

  uint32_t next() {
    if (used_ == 4) philox4x32(key_, stream_, counter_++, words_), used_ = 0;
    return words_[used_++];
  }
  // Uniform in [0, n), n >= 1 (the multiply-shift map; its bias is below n / 2^32).
  int64_t below(int64_t n) { return int64_t((uint64_t(next()) * uint64_t(n)) >> 32); }
  // Uniform in [low, high].
  int64_t between(int64_t low, int64_t high) { return low + below(high - low + 1); }
  double uniform() { return double(next()) / 4294967296.0; }  // [0, 1)
  bool chance(double p) { return uniform() < p; }

 private:
  uint64_t key_, stream_, counter_ = 0;
  uint32_t words_[4] = {0, 0, 0, 0};
  int used_ = 4;
};

}  // namespace tessera::data
