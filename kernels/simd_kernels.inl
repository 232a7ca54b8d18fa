// The body of simd_avx2.cpp and simd_avx512.cpp: every f32 SIMD kernel, compiled for the
// instruction set of the including file, gathered into that set's SimdTable.
#include "kernels/row_blocks.h"  // stream_row_output
#include "kernels/simd_table.h"
#include "kernels/vec.h"
#include "kernels/simd_elementwise.inl"
#include "kernels/simd_reduce.inl"
#include "kernels/simd_fused.inl"
#include "kernels/simd_layout.inl"
#include "kernels/simd_packed_gemm.inl"  // after simd_layout.inl: uses its transpose_tiles
#include "kernels/simd_gemm.inl"  // after both: uses transpose and packed_micro_kernel

namespace tessera::kernels::TESSERA_SIMD_NS {

const SimdTable& table() {
  static const SimdTable t{
      .math = math,
      .unary = unary,
      .unary_backward = unary_backward,
      .binary = binary,
      .axpy = axpy,
      .sum_rows = sum_rows,
      .max_rows = max_rows,
      .var_rows = var_rows,
      .softmax_rows = softmax_rows,
      .log_softmax_rows = log_softmax_rows,
      .softmax_backward_rows = softmax_backward_rows,
      .log_softmax_backward_rows = log_softmax_backward_rows,
      .bias_act_forward = bias_act_forward,
      .bias_act_backward = bias_act_backward,
      .column_sums = column_sums,
      .gated_add_forward = gated_add_forward,
      .gated_add_backward = gated_add_backward,
      .layer_norm_forward = layer_norm_forward,
      .layer_norm_backward = layer_norm_backward,
      .cross_entropy = cross_entropy,
      .adamw = adamw,
      .small_gemm = small_gemm,
      .packed_gemm = packed_gemm,
      .transpose = transpose,
  };
  return t;
}

}  // namespace tessera::kernels::TESSERA_SIMD_NS
