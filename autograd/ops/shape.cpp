// Views (reshape of contiguous data, transpose, permute, slice, unsqueeze, squeeze, expand)
// share storage with their input; concat and stack copy.
#include <numeric>

#include "autograd/error.h"
#include "autograd/ops.h"
#include "autograd/ops/strided.h"

namespace tessera {
namespace {

Tensor make_view(const Tensor& x, Shape shape, Shape strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = x.storage();
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = x.dtype();
  return Tensor(std::move(impl));
}

// Resolves one -1 in a requested shape against numel.
Shape infer_shape(const Shape& requested, int64_t numel, const Shape& from) {
  Shape out = requested;
  int64_t known = 1, infer_at = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      if (infer_at >= 0) fail("reshape: more than one -1 in {}", shape_to_string(requested));
      infer_at = int64_t(i);
    } else if (out[i] < 0) {
      fail("reshape: invalid size {} in {}", out[i], shape_to_string(requested));
    } else {
      known *= out[i];
    }
  }
  if (infer_at >= 0) {
    if (known == 0 || numel % known != 0)
      fail("reshape: cannot reshape {} ({} elements) into {}", shape_to_string(from), numel, shape_to_string(requested));
    out[infer_at] = numel / known;
  }
  if (shape_numel(out) != numel)
    fail("reshape: cannot reshape {} ({} elements) into {}", shape_to_string(from), numel, shape_to_string(requested));
  return out;
}

}  // namespace

Tensor contiguous(const Tensor& x) {
  if (x.is_contiguous()) return x;
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  detail::copy_strided(x, out);
  return record(out, "contiguous", {x}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Tensor reshape(const Tensor& x, const Shape& requested) {
  const Shape shape = infer_shape(requested, x.numel(), x.shape());
  if (shape == x.shape()) return x;
  const Tensor src = contiguous(x);
  Tensor out = make_view(src, shape, contiguous_strides(shape), src.offset());
  const Shape in_shape = x.shape();
  return record(out, "reshape", {src}, [in_shape](const Tensor& g) { return std::vector<Tensor>{reshape(g, in_shape)}; });
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  const int64_t rank = x.dim();
  if (int64_t(dims.size()) != rank)
    fail("permute: {} dims given for a tensor of shape {}", dims.size(), x.shape_string());
  std::vector<int64_t> perm(rank), inverse(rank, -1);
  Shape shape(rank), strides(rank);
  for (int64_t i = 0; i < rank; ++i) {
    perm[i] = normalize_dim(dims[i], rank, "permute");
    if (inverse[perm[i]] != -1) fail("permute: dim {} repeated in ({})", perm[i], fmt::join(dims, ", "));
    inverse[perm[i]] = i;
    shape[i] = x.shape()[perm[i]];
    strides[i] = x.strides()[perm[i]];
  }
  Tensor out = make_view(x, shape, strides, x.offset());
  return record(out, "permute", {x}, [inverse](const Tensor& g) { return std::vector<Tensor>{permute(g, inverse)}; });
}

Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) {
  const int64_t a = normalize_dim(d0, x.dim(), "transpose"), b = normalize_dim(d1, x.dim(), "transpose");
  std::vector<int64_t> dims(x.dim());
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[a], dims[b]);
  return permute(x, dims);
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  const int64_t d = normalize_dim(dim, x.dim(), "slice");
  const int64_t n = x.shape()[d];
  if (step <= 0) fail("slice: step must be positive (got {})", step);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape shape = x.shape(), strides = x.strides();
  shape[d] = (end - start + step - 1) / step;
  strides[d] *= step;
  Tensor out = make_view(x, shape, strides, x.offset() + start * x.strides()[d]);
  const Shape in_shape = x.shape();
  return record(out, "slice", {x}, [in_shape, d, start, end, step](const Tensor& g) {
    Tensor gx = Tensor::zeros(in_shape, g.dtype());
    Tensor window = slice(gx, d, start, end, step);
    window.copy_(g);
    return std::vector<Tensor>{gx};
  });
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  const int64_t d = normalize_dim(dim, x.dim() + 1, "unsqueeze");
  Shape shape = x.shape(), strides = x.strides();
  const int64_t stride = d < x.dim() ? x.strides()[d] * x.shape()[d] : 1;
  shape.insert(shape.begin() + d, 1);
  strides.insert(strides.begin() + d, stride);
  Tensor out = make_view(x, shape, strides, x.offset());
  return record(out, "unsqueeze", {x}, [d](const Tensor& g) { return std::vector<Tensor>{squeeze(g, d)}; });
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  const int64_t d = normalize_dim(dim, x.dim(), "squeeze");
  if (x.shape()[d] != 1) return x;
  Shape shape = x.shape(), strides = x.strides();
  shape.erase(shape.begin() + d);
  strides.erase(strides.begin() + d);
  Tensor out = make_view(x, shape, strides, x.offset());
  return record(out, "squeeze", {x}, [d](const Tensor& g) { return std::vector<Tensor>{unsqueeze(g, d)}; });
}

Tensor expand(const Tensor& x, const Shape& requested) {
  if (int64_t(requested.size()) < x.dim())
    fail("expand: cannot expand {} to the lower rank {}", x.shape_string(), shape_to_string(requested));
  Shape shape = requested;
  Shape strides(requested.size(), 0);
  const int64_t shift = int64_t(requested.size()) - x.dim();
  for (int64_t d = 0; d < int64_t(requested.size()); ++d) {
    if (d < shift) {
      if (shape[d] < 0) fail("expand: -1 is not allowed in a new leading dim ({})", shape_to_string(requested));
      continue;
    }
    const int64_t have = x.shape()[d - shift];
    if (shape[d] == -1) shape[d] = have;
    if (shape[d] < 0) fail("expand: invalid size {} in {}", shape[d], shape_to_string(requested));
    if (have == shape[d]) {
      strides[d] = x.strides()[d - shift];
    } else if (have != 1) {
      fail("expand: cannot expand {} to {}", x.shape_string(), shape_to_string(requested));
    }
  }
  if (shape == x.shape()) return x;
  Tensor out = make_view(x, shape, strides, x.offset());
  const Shape in_shape = x.shape();
  return record(out, "expand", {x}, [in_shape](const Tensor& g) { return std::vector<Tensor>{sum_to(g, in_shape)}; });
}

Tensor concat(const std::vector<Tensor>& xs, int64_t dim) {
  if (xs.empty()) fail("concat: no tensors given");
  const int64_t d = normalize_dim(dim, xs[0].dim(), "concat");
  Shape shape = xs[0].shape();
  shape[d] = 0;
  for (const Tensor& x : xs) {
    Shape expect = xs[0].shape();
    expect[d] = x.dim() == xs[0].dim() ? x.shape()[d] : -1;
    if (x.shape() != expect || x.dtype() != xs[0].dtype())
      fail("concat: {} {} does not fit {} {} along dim {}", x.shape_string(), dtype_name(x.dtype()),
           xs[0].shape_string(), dtype_name(xs[0].dtype()), d);
    shape[d] += x.shape()[d];
  }
  Tensor out = Tensor::empty(shape, xs[0].dtype());
  std::vector<int64_t> sizes;
  int64_t at = 0;
  for (const Tensor& x : xs) {
    Tensor window = slice(out.detach(), d, at, at + x.shape()[d]);
    window.copy_(x);
    sizes.push_back(x.shape()[d]);
    at += x.shape()[d];
  }
  return record(out, "concat", xs, [d, sizes](const Tensor& g) {
    std::vector<Tensor> grads;
    int64_t begin = 0;
    for (int64_t s : sizes) {
      grads.push_back(slice(g, d, begin, begin + s));
      begin += s;
    }
    return grads;
  });
}

Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
  if (xs.empty()) fail("stack: no tensors given");
  const int64_t d = normalize_dim(dim, xs[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  for (const Tensor& x : xs) {
    if (x.shape() != xs[0].shape())
      fail("stack: shapes differ ({} and {})", xs[0].shape_string(), x.shape_string());
    parts.push_back(unsqueeze(x, d));
  }
  return concat(parts, d);
}

}  // namespace tessera
