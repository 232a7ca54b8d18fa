#include "autograd/random.h"

#include <cmath>
#include <numbers>

#include "autograd/error.h"

namespace tessera {
namespace {

// A 32-bit word to a float in [0, 1) with 24 bits of precision, never exactly 1.
inline double unit(uint32_t w) { return double(w >> 8) * (1.0 / 16777216.0); }
// Two words to a double in [0, 1) with 53 bits.
inline double unit53(uint32_t hi, uint32_t lo) {
  return double((uint64_t(hi) << 21) ^ (lo >> 11)) * (1.0 / 9007199254740992.0);
}

// low + (high - low) * u for u in [0, 1), kept below high: rounding to T can otherwise land on it.
template <class T>
inline T scale_unit(double u, double low, double high) {
  const T v = T(low + (high - low) * u);
  return (v >= T(high) && high > low) ? std::nextafter(T(high), T(low)) : v;
}

template <class Fn>
void for_each_block(int64_t n, Generator& gen, Fn&& fn) {
  const uint64_t blocks = uint64_t((n + 3) / 4);
  const uint64_t first = gen.advance(blocks);
  uint32_t words[4];
  for (uint64_t b = 0; b < blocks; ++b) {
    philox4x32(gen.seed(), 0, first + b, words);
    fn(int64_t(b) * 4, words);
  }
}

}  // namespace

Generator& default_generator() {
  static Generator gen(0);
  return gen;
}

void manual_seed(uint64_t seed) { default_generator().set_state(seed, 0); }

void philox4x32(uint64_t key, uint64_t counter_hi, uint64_t counter_lo, uint32_t out[4]) {
  uint32_t c0 = uint32_t(counter_lo), c1 = uint32_t(counter_lo >> 32), c2 = uint32_t(counter_hi),
           c3 = uint32_t(counter_hi >> 32);
  uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t(0xD2511F53u) * c0;
    const uint64_t p1 = uint64_t(0xCD9E8D57u) * c2;
    const uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n1 = uint32_t(p1);
    const uint32_t n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
    const uint32_t n3 = uint32_t(p0);
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

Tensor uniform(const Shape& shape, double low, double high, Generator& gen, DType dtype) {
  if (!is_floating(dtype)) fail("uniform: dtype must be f32 or f64, got {}", dtype_name(dtype));
  Tensor t = Tensor::empty(shape, dtype);
  const int64_t n = t.numel();
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T>) {
      T* p = t.data<T>();
      if constexpr (std::is_same_v<T, double>) {
        // f64 uses two words per value: two values per block, so blocks cover n/2.
        for_each_block((n + 1) / 2 * 2 * 2, gen, [&](int64_t i, const uint32_t* w) {
          const int64_t j = i / 2;
          if (j < n) p[j] = scale_unit<T>(unit53(w[0], w[1]), low, high);
          if (j + 1 < n) p[j + 1] = scale_unit<T>(unit53(w[2], w[3]), low, high);
        });
      } else {
        for_each_block(n, gen, [&](int64_t i, const uint32_t* w) {
          for (int l = 0; l < 4 && i + l < n; ++l) p[i + l] = scale_unit<T>(unit(w[l]), low, high);
        });
      }
    }
  });
  return t;
}

Tensor rand(const Shape& shape, Generator& gen, DType dtype) { return uniform(shape, 0, 1, gen, dtype); }

Tensor normal(const Shape& shape, double mean, double stddev, Generator& gen, DType dtype) {
  if (!is_floating(dtype)) fail("normal: dtype must be f32 or f64, got {}", dtype_name(dtype));
  Tensor t = Tensor::empty(shape, dtype);
  const int64_t n = t.numel();
  // Box-Muller: each block's four words give two normals.
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T>) {
      T* p = t.data<T>();
      for_each_block(2 * n, gen, [&](int64_t i, const uint32_t* w) {
        const int64_t j = i / 2;
        const double u1 = 1.0 - unit53(w[0], w[1]);  // (0, 1]
        const double u2 = unit53(w[2], w[3]);
        const double r = std::sqrt(-2.0 * std::log(u1));
        const double theta = 2.0 * std::numbers::pi * u2;
        if (j < n) p[j] = T(mean + stddev * r * std::cos(theta));
        if (j + 1 < n) p[j + 1] = T(mean + stddev * r * std::sin(theta));
      });
    }
  });
  return t;
}

Tensor randn(const Shape& shape, Generator& gen, DType dtype) { return normal(shape, 0, 1, gen, dtype); }

Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen, DType dtype) {
  if (high <= low) fail("randint: empty range [{}, {})", low, high);
  if (is_floating(dtype) || dtype == DType::u8) fail("randint: dtype must be i32 or i64, got {}", dtype_name(dtype));
  Tensor t = Tensor::empty(shape, dtype);
  const int64_t n = t.numel();
  const uint64_t range = uint64_t(high - low);
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(t.raw_data());
    for_each_block(2 * n, gen, [&](int64_t i, const uint32_t* w) {
      const int64_t j = i / 2;
      // 64 random bits per value; the modulo bias is below 2^-32 for any range we use.
      if (j < n) p[j] = T(low + int64_t(((uint64_t(w[0]) << 32) | w[1]) % range));
      if (j + 1 < n) p[j + 1] = T(low + int64_t(((uint64_t(w[2]) << 32) | w[3]) % range));
    });
  });
  return t;
}

Tensor randperm(int64_t n, Generator& gen) {
  Tensor t = Tensor::arange(n, DType::i64);
  int64_t* p = t.data<int64_t>();
  // Fisher-Yates; draw i uses counter offset + i/2.
  const Tensor r = randint(0, std::numeric_limits<int64_t>::max(), {std::max<int64_t>(n, 1)}, gen);
  const int64_t* rv = r.data<int64_t>();
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[rv[i] % (i + 1)]);
  return t;
}

}  // namespace tessera
