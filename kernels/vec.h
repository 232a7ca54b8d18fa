#pragma once
// One float vector type for the SIMD kernels, so each kernel is written once and compiled twice:
// in simd_avx2.cpp (8 lanes, -mavx2 -mfma) and simd_avx512.cpp (16 lanes, -mavx512f ...). The
// ISA is chosen by the including file's compile flags, and everything lands in a namespace named
// after it (avx2:: or avx512::), so the two builds never share a symbol. Only include this from
// those two files. Tails use masked loads/stores: no scalar remainder loop, no read past the end.
#include <immintrin.h>

#include <cstdint>
#include <type_traits>

#if defined(__AVX512F__)
#define TESSERA_SIMD_NS avx512
#elif defined(__AVX2__) && defined(__FMA__)
#define TESSERA_SIMD_NS avx2
#else
#error "kernels/vec.h is only for the files compiled with -mavx2 -mfma or -mavx512f"
#endif

namespace tessera::kernels::TESSERA_SIMD_NS {

#if defined(__AVX512F__)

constexpr int kLanes = 16;
struct F { __m512 v; };
struct I { __m512i v; };
using M = __mmask16;

inline M tail_mask(int64_t n) { return n >= 16 ? M(0xffff) : M((1u << n) - 1); }
inline F load(const float* p) { return {_mm512_loadu_ps(p)}; }
inline F load_part(const float* p, int64_t n) { return {_mm512_maskz_loadu_ps(tail_mask(n), p)}; }
// The first n lanes from p, the others set to fill.
inline F load_part_or(const float* p, int64_t n, float fill) {
  return {_mm512_mask_loadu_ps(_mm512_set1_ps(fill), tail_mask(n), p)};
}
inline void store(float* p, F x) { _mm512_storeu_ps(p, x.v); }
inline void store_part(float* p, F x, int64_t n) { _mm512_mask_storeu_ps(p, tail_mask(n), x.v); }
inline void stream(float* p, F x) { _mm512_stream_ps(p, x.v); }  // p 64-byte aligned
inline F set1(float x) { return {_mm512_set1_ps(x)}; }
inline F zero() { return {_mm512_setzero_ps()}; }
inline F operator+(F a, F b) { return {_mm512_add_ps(a.v, b.v)}; }
inline F operator-(F a, F b) { return {_mm512_sub_ps(a.v, b.v)}; }
inline F operator*(F a, F b) { return {_mm512_mul_ps(a.v, b.v)}; }
inline F operator/(F a, F b) { return {_mm512_div_ps(a.v, b.v)}; }
// 1/a to ~1 ulp for normal a: the 14-bit estimate and one Newton step (a division costs more).
inline F reciprocal(F a) {
  const __m512 r = _mm512_rcp14_ps(a.v);
  return {_mm512_fmadd_ps(r, _mm512_fnmadd_ps(a.v, r, _mm512_set1_ps(1.0f)), r)};
}
inline F fma(F a, F b, F c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }   // a*b + c
inline F fnma(F a, F b, F c) { return {_mm512_fnmadd_ps(a.v, b.v, c.v)}; } // c - a*b
// max/min return the second operand when either is NaN; callers put the data second.
inline F max(F a, F b) { return {_mm512_max_ps(a.v, b.v)}; }
inline F min(F a, F b) { return {_mm512_min_ps(a.v, b.v)}; }
inline F sqrt(F a) { return {_mm512_sqrt_ps(a.v)}; }
inline F round_nearest(F a) { return {_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
inline M gt(F a, F b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_GT_OQ); }
inline M ge(F a, F b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_GE_OQ); }
inline M lt(F a, F b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_LT_OQ); }
inline M le(F a, F b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_LE_OQ); }
inline M eq(F a, F b) { return _mm512_cmp_ps_mask(a.v, b.v, _CMP_EQ_OQ); }
inline M is_nan(F a) { return _mm512_cmp_ps_mask(a.v, a.v, _CMP_UNORD_Q); }
inline M both(M a, M b) { return a & b; }
inline M either(M a, M b) { return a | b; }
inline bool any(M m) { return m != 0; }
inline M no_lanes() { return 0; }
inline F select(M m, F if_true, F if_false) { return {_mm512_mask_blend_ps(m, if_false.v, if_true.v)}; }
// x in lane k (0 <= k < lanes), 0 in the others.
inline F lane_only(int64_t k, float x) { return {_mm512_maskz_mov_ps(M(1u << k), _mm512_set1_ps(x))}; }
inline F abs(F a) { return {_mm512_abs_ps(a.v)}; }
inline F neg(F a) { return {_mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a.v), _mm512_set1_epi32(int(0x80000000))))}; }
// Bit casts and 32-bit integer lanes, for the exponent tricks of exp and log.
inline I bits(F a) { return {_mm512_castps_si512(a.v)}; }
inline F from_bits(I a) { return {_mm512_castsi512_ps(a.v)}; }
inline I to_int(F a) { return {_mm512_cvtps_epi32(a.v)}; }  // round to nearest
inline F to_float(I a) { return {_mm512_cvtepi32_ps(a.v)}; }
inline I iset1(int x) { return {_mm512_set1_epi32(x)}; }
inline I iadd(I a, I b) { return {_mm512_add_epi32(a.v, b.v)}; }
inline I isub(I a, I b) { return {_mm512_sub_epi32(a.v, b.v)}; }
inline I iand(I a, I b) { return {_mm512_and_si512(a.v, b.v)}; }
inline I ior(I a, I b) { return {_mm512_or_si512(a.v, b.v)}; }
template <int s> inline I shl(I a) { return {_mm512_slli_epi32(a.v, s)}; }
template <int s> inline I shr(I a) { return {_mm512_srli_epi32(a.v, s)}; }
// Halves by shuffle (GCC 12's _mm512_reduce_* trip -Wmaybe-uninitialized).
inline __m256 high_half(__m512 a) { return _mm512_castps512_ps256(_mm512_shuffle_f32x4(a, a, 0xee)); }
inline float hsum(F a) {
  __m256 h = _mm256_add_ps(_mm512_castps512_ps256(a.v), high_half(a.v));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float hmax(F a) {
  __m256 h = _mm256_max_ps(_mm512_castps512_ps256(a.v), high_half(a.v));
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

#else  // AVX2 + FMA

constexpr int kLanes = 8;
struct F { __m256 v; };
struct I { __m256i v; };
struct M { __m256 v; };

inline __m256i tail_mask(int64_t n) {
  const __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n >= 8 ? 8 : n)), index);
}
inline F load(const float* p) { return {_mm256_loadu_ps(p)}; }
inline F load_part(const float* p, int64_t n) { return {_mm256_maskload_ps(p, tail_mask(n))}; }
inline F load_part_or(const float* p, int64_t n, float fill) {
  const __m256i m = tail_mask(n);
  return {_mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m))};
}
inline void store(float* p, F x) { _mm256_storeu_ps(p, x.v); }
inline void store_part(float* p, F x, int64_t n) { _mm256_maskstore_ps(p, tail_mask(n), x.v); }
inline void stream(float* p, F x) { _mm256_stream_ps(p, x.v); }  // p 32-byte aligned
inline F set1(float x) { return {_mm256_set1_ps(x)}; }
inline F zero() { return {_mm256_setzero_ps()}; }
inline F operator+(F a, F b) { return {_mm256_add_ps(a.v, b.v)}; }
inline F operator-(F a, F b) { return {_mm256_sub_ps(a.v, b.v)}; }
inline F operator*(F a, F b) { return {_mm256_mul_ps(a.v, b.v)}; }
inline F operator/(F a, F b) { return {_mm256_div_ps(a.v, b.v)}; }
// The AVX2 estimate has 12 bits: one Newton step would not reach float precision, so divide.
inline F reciprocal(F a) { return {_mm256_div_ps(_mm256_set1_ps(1.0f), a.v)}; }
inline F fma(F a, F b, F c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
inline F fnma(F a, F b, F c) { return {_mm256_fnmadd_ps(a.v, b.v, c.v)}; }
inline F max(F a, F b) { return {_mm256_max_ps(a.v, b.v)}; }
inline F min(F a, F b) { return {_mm256_min_ps(a.v, b.v)}; }
inline F sqrt(F a) { return {_mm256_sqrt_ps(a.v)}; }
inline F round_nearest(F a) { return {_mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
inline M gt(F a, F b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_GT_OQ)}; }
inline M ge(F a, F b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_GE_OQ)}; }
inline M lt(F a, F b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_LT_OQ)}; }
inline M le(F a, F b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_LE_OQ)}; }
inline M eq(F a, F b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_EQ_OQ)}; }
inline M is_nan(F a) { return {_mm256_cmp_ps(a.v, a.v, _CMP_UNORD_Q)}; }
inline M both(M a, M b) { return {_mm256_and_ps(a.v, b.v)}; }
inline M either(M a, M b) { return {_mm256_or_ps(a.v, b.v)}; }
inline bool any(M m) { return _mm256_movemask_ps(m.v) != 0; }
inline M no_lanes() { return {_mm256_setzero_ps()}; }
inline F select(M m, F if_true, F if_false) { return {_mm256_blendv_ps(if_false.v, if_true.v, m.v)}; }
inline F lane_only(int64_t k, float x) {
  const __m256i hit = _mm256_cmpeq_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(int(k)));
  return {_mm256_and_ps(_mm256_castsi256_ps(hit), _mm256_set1_ps(x))};
}
inline F abs(F a) { return {_mm256_andnot_ps(_mm256_set1_ps(-0.0f), a.v)}; }
inline F neg(F a) { return {_mm256_xor_ps(_mm256_set1_ps(-0.0f), a.v)}; }
inline I bits(F a) { return {_mm256_castps_si256(a.v)}; }
inline F from_bits(I a) { return {_mm256_castsi256_ps(a.v)}; }
inline I to_int(F a) { return {_mm256_cvtps_epi32(a.v)}; }
inline F to_float(I a) { return {_mm256_cvtepi32_ps(a.v)}; }
inline I iset1(int x) { return {_mm256_set1_epi32(x)}; }
inline I iadd(I a, I b) { return {_mm256_add_epi32(a.v, b.v)}; }
inline I isub(I a, I b) { return {_mm256_sub_epi32(a.v, b.v)}; }
inline I iand(I a, I b) { return {_mm256_and_si256(a.v, b.v)}; }
inline I ior(I a, I b) { return {_mm256_or_si256(a.v, b.v)}; }
template <int s> inline I shl(I a) { return {_mm256_slli_epi32(a.v, s)}; }
template <int s> inline I shr(I a) { return {_mm256_srli_epi32(a.v, s)}; }
inline float hsum(F a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float hmax(F a) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

#endif

// n lanes (1 <= n <= lanes) from p. In a loop whose body is inlined for n == lanes these become
// plain loads and stores: masked stores do not forward to later loads as cheaply.
inline F load_n(const float* p, int64_t n) { return n >= kLanes ? load(p) : load_part(p, n); }
inline void store_n(float* p, F x, int64_t n) {
  if (n >= kLanes)
    store(p, x);
  else
    store_part(p, x, n);
}

// fn(c, n) over [0, cols) in vectors: full ones (n == lanes), then the tail (0 < n < lanes).
// Always inlined, so that the loop state stays in registers (F is may_alias: stores through
// float* would otherwise force it to be reloaded from the closure on every vector).
template <class Fn>
__attribute__((always_inline)) inline void by_vectors(int64_t cols, Fn&& fn) {
  int64_t c = 0;
  for (; c + kLanes <= cols; c += kLanes) fn(c, int64_t(kLanes));
  if (c < cols) fn(c, cols - c);
}

// Writes a row out[c, c + n) = fn(c, n), c in [0, cols), by streaming (non-temporal) stores of
// the 64-byte lines of out that lie wholly in the row; the head before the first line boundary
// and the tail after the last whole line are stored normally. The constructor stores the head,
// step() one vector of the lines, finish() the rest: a caller can spread a row's streaming stores
// over the arithmetic of the next row, rather than issue them in one burst that stalls the core.
// fn must compute each lane from its own index alone (no sums across lanes), so that the result
// does not depend on where the vectors start. A caller that streams ends with stream_fence().
constexpr int64_t kLineFloats = 16;

template <class Fn>
class RowStreamer {
 public:
  RowStreamer() = default;  // nothing to write
  RowStreamer(float* out, int64_t cols, Fn fn) : out_(out), fn_(fn), cols_(cols) {
    const uintptr_t address = reinterpret_cast<uintptr_t>(out);
    const int64_t head = int64_t((64 - address % 64) % 64 / sizeof(float));
    if (address % sizeof(float) != 0 || head >= cols) return;  // no whole line: finish() stores it all
    normal(0, head);
    next_ = head;
    lines_end_ = head + (cols - head) / kLineFloats * kLineFloats;
  }
  __attribute__((always_inline)) void step() {
    if (next_ < lines_end_) {
      stream(out_ + next_, fn_(next_, int64_t(kLanes)));
      next_ += kLanes;
    }
  }
  void finish() {
    for (; next_ < lines_end_; next_ += kLanes) stream(out_ + next_, fn_(next_, int64_t(kLanes)));
    if (out_ != nullptr) normal(next_, cols_);
    out_ = nullptr;
  }

 private:
  __attribute__((always_inline)) void normal(int64_t begin, int64_t end) {
    by_vectors(end - begin, [&](int64_t c, int64_t n) __attribute__((always_inline)) {
      store_n(out_ + begin + c, fn_(begin + c, n), n);
    });
  }
  float* out_ = nullptr;
  Fn fn_{};
  int64_t cols_ = 0, next_ = 0, lines_end_ = 0;
};

// out[c, c + n) = fn(c, n) over [0, cols): by normal stores, or by RowStreamer when `streaming`.
template <class Fn>
__attribute__((always_inline)) inline void store_row(float* out, int64_t cols, bool streaming, Fn&& fn) {
  if (streaming) return RowStreamer<std::decay_t<Fn>>(out, cols, fn).finish();
  by_vectors(cols, [&](int64_t c, int64_t n) __attribute__((always_inline)) { store_n(out + c, fn(c, n), n); });
}

// Whether the row kernels (softmax, log-softmax, LayerNorm, cross-entropy) honour
// stream_row_output on this instruction set. AVX-512 streams a whole line per store; the AVX2
// path, whose streaming stores are half lines, measured 7-25 % slower streaming than not in each
// of them (Zen 5 forced onto AVX2, 128 MiB, under load), so it keeps ordinary stores there.
// Transpose streams on both: it gained on both (AVX2: 38-44 % of copy against 22-25 %).
constexpr bool kRowKernelsStream = kLanes == 16;

// Asks for the lines of [p, p + n) ahead of use (prefetches never fault, even past an array's end).
inline void prefetch_lines(const float* p, int64_t n) {
  for (int64_t i = 0; i < n; i += kLineFloats) _mm_prefetch(reinterpret_cast<const char*>(p + i), _MM_HINT_T0);
}

// Orders this thread's streaming stores before whatever follows (another thread reading the output).
inline void stream_fence() { _mm_sfence(); }

}  // namespace tessera::kernels::TESSERA_SIMD_NS
