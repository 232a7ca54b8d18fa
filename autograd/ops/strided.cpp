#include "autograd/ops/strided.h"

#include <cstring>

#include "autograd/error.h"

namespace tessera::detail {

StridedLoop merge_dims(const Shape& shape, std::vector<Shape> strides) {
  StridedLoop loop;
  loop.strides.resize(strides.size());
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool mergeable = !loop.shape.empty();
    for (size_t k = 0; k < strides.size() && mergeable; ++k)
      mergeable = loop.strides[k].back() == strides[k][d] * shape[d];
    if (mergeable) {
      loop.shape.back() *= shape[d];
      for (size_t k = 0; k < strides.size(); ++k) loop.strides[k].back() = strides[k][d];
    } else {
      loop.shape.push_back(shape[d]);
      for (size_t k = 0; k < strides.size(); ++k) loop.strides[k].push_back(strides[k][d]);
    }
  }
  if (loop.shape.empty()) {
    loop.shape.push_back(1);
    for (auto& s : loop.strides) s.push_back(1);
  }
  return loop;
}

Shape broadcast_strides(const Tensor& x, const Shape& shape) {
  Shape out(shape.size(), 0);
  const int64_t shift = int64_t(shape.size()) - x.dim();
  for (int64_t d = 0; d < x.dim(); ++d) out[shift + d] = x.shape()[d] == 1 ? 0 : x.strides()[d];
  return out;
}

namespace {
template <class T>
void copy_runs(const StridedLoop& loop, const T* src, T* dst) {
  for_each_run(loop, [&](const int64_t* off, int64_t n) {
    const T* s = src + off[0];
    T* d = dst + off[1];
    const int64_t ss = loop.strides[0].back();
    if (ss == 1) {
      std::memcpy(d, s, size_t(n) * sizeof(T));
    } else {
      for (int64_t i = 0; i < n; ++i) d[i] = s[i * ss];
    }
  });
}
}  // namespace

void copy_strided(const Tensor& src, const Tensor& dst) {
  if (src.shape() != dst.shape() || src.dtype() != dst.dtype())
    fail("copy: source {} {} and destination {} {} differ", src.shape_string(), dtype_name(src.dtype()),
         dst.shape_string(), dtype_name(dst.dtype()));
  if (src.numel() == 0) return;
  StridedLoop loop = merge_dims(src.shape(), {src.strides(), dst.strides()});
  switch (element_size(src.dtype())) {
    case 1: copy_runs(loop, static_cast<const uint8_t*>(src.raw_data()), static_cast<uint8_t*>(dst.raw_data())); break;
    case 4: copy_runs(loop, static_cast<const uint32_t*>(src.raw_data()), static_cast<uint32_t*>(dst.raw_data())); break;
    case 8: copy_runs(loop, static_cast<const uint64_t*>(src.raw_data()), static_cast<uint64_t*>(dst.raw_data())); break;
  }
}

}  // namespace tessera::detail
