#pragma once
// Scalar reference of transpose and copy (see transpose.h).
#include <cstdint>

namespace tessera::kernels::ref {

template <class T>
void transpose(const T* in, int64_t rows, int64_t cols, int64_t ld_in, T* out, int64_t ld_out) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[c * ld_out + r] = in[r * ld_in + c];
}

template <class T>
void copy_2d(const T* in, int64_t rows, int64_t cols, int64_t ld_in, T* out, int64_t ld_out) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[r * ld_out + c] = in[r * ld_in + c];
}

}  // namespace tessera::kernels::ref
