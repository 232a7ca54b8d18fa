#pragma once
// Element types. f32 is what models compute in; f64 serves gradient checks; i32/i64 hold labels
// and token ids; u8 holds images.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tessera {

enum class DType : uint8_t { f32, f64, i32, i64, u8 };

constexpr size_t element_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::i32: return 4;
    case DType::i64: return 8;
    case DType::u8: return 1;
  }
  return 0;
}

constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f64: return "f64";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
    case DType::u8: return "u8";
  }
  return "?";
}

constexpr bool is_floating(DType t) { return t == DType::f32 || t == DType::f64; }

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::u8; };
template <class T> inline constexpr DType dtype_v = dtype_of<T>::value;

// Calls fn(T{}) with T the C++ type of `t`.
template <class Fn>
decltype(auto) visit_dtype(DType t, Fn&& fn) {
  switch (t) {
    case DType::f32: return fn(float{});
    case DType::f64: return fn(double{});
    case DType::i32: return fn(int32_t{});
    case DType::i64: return fn(int64_t{});
    case DType::u8: return fn(uint8_t{});
  }
  return fn(float{});
}

// Throws tessera::Error "<op>: does not support dtype <t>" (defined in dtype.cpp, so that this
// header needs no formatting library).
[[noreturn]] void fail_unsupported_dtype(const char* op, DType t);

// Calls fn(T{}) with T = float or double, the C++ type of a floating-point `t`. Any other dtype is
// an error naming `op` and the dtype: an op never falls back to computing in another precision.
// The one dtype switch of every floating-point op (forward and backward).
template <class Fn>
decltype(auto) visit_floating(DType t, const char* op, Fn&& fn) {
  if (t == DType::f32) return fn(float{});
  if (t == DType::f64) return fn(double{});
  fail_unsupported_dtype(op, t);
}

}  // namespace tessera
