// Indexing (index_select, gather, embedding), selection (where, masked_fill) and comparisons.
// Index tensors may be i32 or i64; an index outside its dim is an Error naming the op, the value
// and the shape. Backward of a lookup scatters (adds) the gradient back, so repeated indices
// accumulate.
#include <cstring>

#include "autograd/error.h"
#include "autograd/ops.h"
#include "autograd/ops/strided.h"

namespace tessera {
namespace {

void check_index_dtype(const Tensor& index, const char* op) {
  if (index.dtype() != DType::i32 && index.dtype() != DType::i64)
    fail("{}: index must be i32 or i64, got {} {}", op, dtype_name(index.dtype()), index.shape_string());
}

// The index as contiguous memory, read as int64 whatever its integer type.
struct IndexReader {
  Tensor data;
  explicit IndexReader(const Tensor& index) : data(index.detach().contiguous()) {}
  int64_t operator[](int64_t i) const {
    return data.dtype() == DType::i64 ? static_cast<const int64_t*>(data.raw_data())[i]
                                      : int64_t(static_cast<const int32_t*>(data.raw_data())[i]);
  }
};

// Checks every index against [0, size) before anything is read through it.
void check_range(const IndexReader& idx, int64_t size, int64_t dim, const Tensor& x, const char* op) {
  for (int64_t i = 0, n = idx.data.numel(); i < n; ++i) {
    const int64_t v = idx[i];
    if (v < 0 || v >= size)
      fail("{}: index {} is out of range for dim {} of size {} (input {})", op, v, dim, size, x.shape_string());
  }
}

// Sizes around `dim`: x viewed as [outer, x.shape[dim], inner].
void split_at(const Shape& shape, int64_t dim, int64_t* outer, int64_t* inner) {
  *outer = 1, *inner = 1;
  for (int64_t d = 0; d < dim; ++d) *outer *= shape[d];
  for (int64_t d = dim + 1; d < int64_t(shape.size()); ++d) *inner *= shape[d];
}

// index_select under a given op name (embedding reports itself).
Tensor index_select_named(const Tensor& x, int64_t dim, const Tensor& index, const char* op) {
  check_index_dtype(index, op);
  if (index.dim() != 1) fail("{}: index must be 1-D, got {} (input {})", op, index.shape_string(), x.shape_string());
  const int64_t d = normalize_dim(dim, x.dim(), op);
  const IndexReader idx(index);
  const int64_t size = x.shape()[d], n = index.numel();
  check_range(idx, size, d, x, op);
  Shape out_shape = x.shape();
  out_shape[d] = n;
  Tensor out = Tensor::empty(out_shape, x.dtype());
  int64_t outer = 0, inner = 0;
  split_at(x.shape(), d, &outer, &inner);
  if (out.numel() > 0) {
    const Tensor src = x.detach().contiguous();
    const size_t row = size_t(inner) * element_size(x.dtype());
    const char* s = static_cast<const char*>(src.raw_data());
    char* o = static_cast<char*>(out.raw_data());
    for (int64_t a = 0; a < outer; ++a)
      for (int64_t i = 0; i < n; ++i) std::memcpy(o + (a * n + i) * row, s + (a * size + idx[i]) * row, row);
  }
  if (!needs_grad({&x})) return out;
  const Shape in_shape = x.shape();
  return record(out, op, {x}, [idx, in_shape, d, outer, inner, size, n](const Tensor& g) {
    Tensor gx = Tensor::zeros(in_shape, g.dtype());
    const Tensor gc = g.contiguous();
    visit_floating(g.dtype(), "index_select backward", [&](auto tag) {
      using T = decltype(tag);
      const T* pg = gc.data<T>();
      T* px = gx.data<T>();
      for (int64_t a = 0; a < outer; ++a)
        for (int64_t i = 0; i < n; ++i) {
          T* dst = px + (a * size + idx[i]) * inner;
          const T* src = pg + (a * n + i) * inner;
          for (int64_t j = 0; j < inner; ++j) dst[j] += src[j];
        }
    });
    return std::vector<Tensor>{gx};
  });
}

// Calls fn(offsets) for every element of `shape`, offsets[k] being operand k's element offset
// (operands given by their strides over `shape`).
template <size_t N, class Fn>
void for_each_element(const Shape& shape, std::vector<Shape> strides, Fn&& fn) {
  if (shape_numel(shape) == 0) return;
  const detail::StridedLoop loop = detail::merge_dims(shape, std::move(strides));
  int64_t inner[N];
  for (size_t k = 0; k < N; ++k) inner[k] = loop.strides[k].back();
  detail::for_each_run(loop, [&](const int64_t* off, int64_t n) {
    int64_t at[N];
    for (int64_t i = 0; i < n; ++i) {
      for (size_t k = 0; k < N; ++k) at[k] = off[k] + i * inner[k];
      fn(at);
    }
  });
}

// where without history; the result has the broadcast shape of the three.
Tensor where_forward(const Tensor& cond, const Tensor& a, const Tensor& b, const char* op) {
  if (cond.dtype() != DType::u8)
    fail("{}: condition must be u8, got {} {}", op, dtype_name(cond.dtype()), cond.shape_string());
  if (a.dtype() != b.dtype())
    fail("{}: dtypes differ: {} {} and {} {}", op, a.shape_string(), dtype_name(a.dtype()), b.shape_string(),
         dtype_name(b.dtype()));
  const Shape ab = broadcast_shapes(a.shape(), b.shape(), op);
  Shape shape;
  try {
    shape = broadcast_shapes(cond.shape(), ab, op);
  } catch (const Error&) {
    fail("{}: condition {} does not broadcast with {} and {}", op, cond.shape_string(), a.shape_string(),
         b.shape_string());
  }
  Tensor out = Tensor::empty(shape, a.dtype());
  const uint8_t* pc = static_cast<const uint8_t*>(cond.raw_data());
  visit_dtype(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pa = static_cast<const T*>(a.raw_data());
    const T* pb = static_cast<const T*>(b.raw_data());
    T* po = out.data<T>();
    for_each_element<4>(shape,
                        {detail::broadcast_strides(cond, shape), detail::broadcast_strides(a, shape),
                         detail::broadcast_strides(b, shape), out.strides()},
                        [&](const int64_t* at) { po[at[3]] = pc[at[0]] ? pa[at[1]] : pb[at[2]]; });
  });
  return out;
}

Tensor where_named(const Tensor& cond, const Tensor& a, const Tensor& b, const char* op) {
  Tensor out = where_forward(cond, a, b, op);
  if (!needs_grad({&a, &b})) return out;
  const Tensor c = cond.detach();
  const Shape sa = a.shape(), sb = b.shape();
  const bool ga = a.requires_grad(), gb = b.requires_grad();
  return record(out, op, {a, b}, [c, sa, sb, ga, gb](const Tensor& g) {
    const Tensor zero = Tensor::zeros({}, g.dtype());
    return std::vector<Tensor>{ga ? sum_to(where_forward(c, g, zero, "where backward"), sa) : Tensor(),
                               gb ? sum_to(where_forward(c, zero, g, "where backward"), sb) : Tensor()};
  });
}

enum class Compare { greater, equal };

Tensor compare(const Tensor& a, const Tensor& b, Compare how, const char* op) {
  if (a.dtype() != b.dtype())
    fail("{}: dtypes differ: {} {} and {} {}", op, a.shape_string(), dtype_name(a.dtype()), b.shape_string(),
         dtype_name(b.dtype()));
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor out = Tensor::empty(shape, DType::u8);
  uint8_t* po = out.data<uint8_t>();
  visit_dtype(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pa = static_cast<const T*>(a.raw_data());
    const T* pb = static_cast<const T*>(b.raw_data());
    for_each_element<3>(shape, {detail::broadcast_strides(a, shape), detail::broadcast_strides(b, shape), out.strides()},
                        [&](const int64_t* at) {
                          const T x = pa[at[0]], y = pb[at[1]];
                          po[at[2]] = how == Compare::greater ? uint8_t(x > y) : uint8_t(x == y);
                        });
  });
  return out;
}

}  // namespace

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  return index_select_named(x, dim, index, "index_select");
}

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  if (weight.dim() != 2) fail("embedding: weight must be [V, D], got {} (ids {})", weight.shape_string(), ids.shape_string());
  check_index_dtype(ids, "embedding");
  Shape out_shape = ids.shape();
  out_shape.push_back(weight.shape()[1]);
  return index_select_named(weight, 0, ids.reshape({ids.numel()}), "embedding").reshape(out_shape);
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  check_index_dtype(index, "gather");
  if (index.dim() != x.dim())
    fail("gather: index {} must have the rank of input {}", index.shape_string(), x.shape_string());
  const int64_t d = normalize_dim(dim, x.dim(), "gather");
  for (int64_t k = 0; k < x.dim(); ++k)
    if (k != d && index.shape()[k] > x.shape()[k])
      fail("gather: index {} is larger than input {} in dim {}", index.shape_string(), x.shape_string(), k);
  const IndexReader idx(index);
  const int64_t size = x.shape()[d];
  check_range(idx, size, d, x, "gather");
  Tensor out = Tensor::empty(index.shape(), x.dtype());
  // Walk the index's positions with x's strides, except along `dim`, where the index says where.
  Shape x_strides = x.strides();
  const int64_t dim_stride = x_strides[d];
  x_strides[d] = 0;
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.raw_data());
    T* po = out.data<T>();
    for_each_element<2>(index.shape(), {x_strides, out.strides()},
                        [&](const int64_t* at) { po[at[1]] = px[at[0] + idx[at[1]] * dim_stride]; });
  });
  if (!needs_grad({&x})) return out;
  const Shape in_shape = x.shape();
  return record(out, "gather", {x}, [idx, in_shape, d](const Tensor& g) {
    Tensor gx = Tensor::zeros(in_shape, g.dtype());
    Shape gx_strides = gx.strides();
    const int64_t stride = gx_strides[d];
    gx_strides[d] = 0;
    visit_floating(g.dtype(), "gather backward", [&](auto tag) {
      using T = decltype(tag);
      const T* pg = static_cast<const T*>(g.raw_data());
      T* px = gx.data<T>();
      // Offsets: [0] into gx (without dim), [1] into g, [2] the index's position (contiguous).
      for_each_element<3>(g.shape(), {gx_strides, g.strides(), contiguous_strides(g.shape())},
                          [&](const int64_t* at) { px[at[0] + idx[at[2]] * stride] += pg[at[1]]; });
    });
    return std::vector<Tensor>{gx};
  });
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) { return where_named(cond, a, b, "where"); }

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  if (broadcast_shapes(x.shape(), mask.shape(), "masked_fill") != x.shape())
    fail("masked_fill: mask {} does not broadcast to input {}", mask.shape_string(), x.shape_string());
  return where_named(mask, Tensor::scalar(value, x.dtype()), x, "masked_fill");
}

Tensor greater(const Tensor& a, const Tensor& b) { return compare(a, b, Compare::greater, "greater"); }
Tensor equal(const Tensor& a, const Tensor& b) { return compare(a, b, Compare::equal, "equal"); }

}  // namespace tessera
