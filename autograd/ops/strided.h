#pragma once
// Walking strided tensors: dims merged where memory allows, then an odometer over all but the
// innermost run, which the caller's kernel handles with a plain pointer and stride.
#include <cstdint>
#include <vector>

#include "autograd/tensor.h"

namespace tessera::detail {

// Operand strides (in elements) for each of several operands over one common shape.
struct StridedLoop {
  Shape shape;                      // after merging; at least one dim
  std::vector<Shape> strides;       // per operand, same rank as shape
};

// Merges adjacent dims that every operand walks contiguously; drops size-1 dims.
StridedLoop merge_dims(const Shape& shape, std::vector<Shape> strides);

// Calls fn(offsets, inner_n) for every inner run, where offsets[k] is operand k's element offset
// of the run's first element and the run walks strides.back() of each operand.
template <class Fn>
void for_each_run(const StridedLoop& loop, Fn&& fn) {
  const size_t ops = loop.strides.size();
  const int64_t rank = int64_t(loop.shape.size());
  const int64_t inner = loop.shape.back();
  int64_t outer = 1;
  for (int64_t d = 0; d + 1 < rank; ++d) outer *= loop.shape[d];
  std::vector<int64_t> index(rank, 0);
  std::vector<int64_t> offsets(ops, 0);
  for (int64_t o = 0; o < outer; ++o) {
    fn(offsets.data(), inner);
    for (int64_t d = rank - 2; d >= 0; --d) {
      if (++index[d] < loop.shape[d]) {
        for (size_t k = 0; k < ops; ++k) offsets[k] += loop.strides[k][d];
        break;
      }
      for (size_t k = 0; k < ops; ++k) offsets[k] -= loop.strides[k][d] * (loop.shape[d] - 1);
      index[d] = 0;
    }
  }
}

// dst (contiguous, same shape and dtype) = src, whatever src's strides.
void copy_strided(const Tensor& src, const Tensor& dst);
// Strides of x seen through a broadcast to `shape` (0 on broadcast dims).
Shape broadcast_strides(const Tensor& x, const Shape& shape);

// t's data, contiguous and outside the graph, for a kernel to read: t itself (detached, sharing
// storage) when it already is contiguous, a copy otherwise.
inline Tensor contiguous_data(const Tensor& t) { return t.is_contiguous() ? t.detach() : t.detach().contiguous(); }

}  // namespace tessera::detail
