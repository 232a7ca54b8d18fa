#pragma once
// bfloat16: the upper 16 bits of an IEEE float (sign, the same 8 exponent bits, 7 mantissa bits),
// so it spans fp32's range with ~3 significant digits. Matrix products read their operands in it
// and accumulate in fp32 (bf16_gemm.h); values are stored as raw uint16_t bits.
#include <cstdint>
#include <cstring>

namespace tessera::kernels {

// Round to nearest, ties to even, as the hardware conversions (vcvtne2ps2bf16) do; NaN stays a
// (quiet) NaN, and values past the largest bf16 round to infinity.
inline uint16_t to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // NaN: keep it one
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

inline float from_bf16(uint16_t b) {
  const uint32_t u = uint32_t(b) << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

// x as the nearest bf16, back in a float.
inline float round_to_bf16(float x) { return from_bf16(to_bf16(x)); }

}  // namespace tessera::kernels
