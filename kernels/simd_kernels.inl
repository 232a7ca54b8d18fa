// The body of simd_avx2.cpp and simd_avx512.cpp: every f32 SIMD kernel, compiled for the
// instruction set of the including file, gathered into that set's SimdTable.
#include "kernels/simd_table.h"
#include "kernels/vec.h"
#include "kernels/simd_elementwise.inl"
#include "kernels/simd_reduce.inl"

namespace tessera::kernels::TESSERA_SIMD_NS {

const SimdTable& table() {
  static const SimdTable t{
      math,          unary,         unary_backward,         binary,
      axpy,          sum_rows,               max_rows,
      var_rows,      softmax_rows,           log_softmax_rows,
      softmax_backward_rows, log_softmax_backward_rows,
  };
  return t;
}

}  // namespace tessera::kernels::TESSERA_SIMD_NS
