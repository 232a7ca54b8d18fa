#pragma once
// 2-D transpose and copy of row-major matrices with leading dimensions (so views and sub-blocks
// work without a gather first).
#include <cstdint>

namespace tessera::kernels {

// out[c*ld_out + r] = in[r*ld_in + c] for r < rows, c < cols. in and out must not overlap.
void transpose(const float* in, int64_t rows, int64_t cols, int64_t ld_in, float* out, int64_t ld_out);
void transpose(const double* in, int64_t rows, int64_t cols, int64_t ld_in, double* out, int64_t ld_out);

// out[r*ld_out + c] = in[r*ld_in + c]
void copy_2d(const float* in, int64_t rows, int64_t cols, int64_t ld_in, float* out, int64_t ld_out);
void copy_2d(const double* in, int64_t rows, int64_t cols, int64_t ld_in, double* out, int64_t ld_out);

}  // namespace tessera::kernels
