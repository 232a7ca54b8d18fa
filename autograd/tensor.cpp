#include "autograd/tensor.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <ostream>

#include "autograd/allocator.h"
#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops.h"
#include "autograd/ops/strided.h"

namespace tessera {

Storage::Storage(size_t n) : data(storage_allocate(n)), bytes(n) {}
Storage::~Storage() { storage_release(data, bytes); }

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size(), 1);
  int64_t s = 1;
  for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
    strides[d] = s;
    s *= shape[d];
  }
  return strides;
}

int64_t shape_numel(const Shape& shape) {
  // Checked: a shape read from a file may be anything, and a signed overflow is undefined.
  int64_t n = 1;
  for (int64_t s : shape) {
    if (s < 0) fail("shape {}: a negative size", shape_to_string(shape));
    if (s != 0 && n > std::numeric_limits<int64_t>::max() / s)
      fail("shape {}: more than 2^63 elements", shape_to_string(shape));
    n *= s;
  }
  return n;
}

std::string shape_to_string(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

int64_t normalize_dim(int64_t dim, int64_t rank, const char* op) {
  const int64_t d = dim < 0 ? dim + rank : dim;
  if (d < 0 || d >= rank) fail("{}: dim {} is out of range for a tensor of rank {}", op, dim, rank);
  return d;
}

// ---- creation ----

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  for (int64_t s : shape)
    if (s < 0) fail("empty: negative size in shape {}", shape_to_string(shape));
  const int64_t numel = shape_numel(shape);
  if (uint64_t(numel) > std::numeric_limits<uint64_t>::max() / 8 / element_size(dtype))
    fail("empty: shape {} is more bytes than any memory", shape_to_string(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(size_t(numel) * element_size(dtype));
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memset(t.raw_data(), 0, size_t(t.numel()) * element_size(dtype));
  return t;
}

Tensor Tensor::ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }

Tensor Tensor::full(const Shape& shape, double value, DType dtype) {
  Tensor t = empty(shape, dtype);
  t.fill_(value);
  return t;
}

Tensor Tensor::arange(int64_t end, DType dtype) { return arange(0, double(end), 1, dtype); }

Tensor Tensor::arange(double start, double end, double step, DType dtype) {
  if (step == 0) fail("arange: step must not be zero");
  const int64_t n = std::max<int64_t>(0, int64_t(std::ceil((end - start) / step)));
  Tensor t = empty({n}, dtype);
  visit_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = T(start + double(i) * step);
  });
  return t;
}

Tensor Tensor::scalar(double value, DType dtype) { return full({}, value, dtype); }

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  if (int64_t(values.size()) != shape_numel(shape))
    fail("from_vector: {} values do not fill shape {}", values.size(), shape_to_string(shape));
  Tensor t = empty(shape, dtype_v<T>);
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(T));
  return t;
}

// ---- description ----

TensorImpl& Tensor::impl() const {
  if (!impl_) throw Error("use of an undefined tensor");
  return *impl_;
}

int64_t Tensor::size(int64_t d) const { return shape()[normalize_dim(d, dim(), "size")]; }
int64_t Tensor::numel() const { return shape_numel(shape()); }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t d = dim() - 1; d >= 0; --d) {
    if (shape()[d] != 1 && strides()[d] != expected) return false;
    expected *= shape()[d];
  }
  return true;
}

std::string Tensor::shape_string() const { return defined() ? shape_to_string(shape()) : "[undefined]"; }

void* Tensor::raw_data() const {
  return static_cast<char*>(impl().storage->data) + impl().offset * int64_t(element_size(impl().dtype));
}

template <class T>
T* Tensor::data() const {
  if (dtype() != dtype_v<T>)
    fail("data: tensor {} holds {}, not {}", shape_string(), dtype_name(dtype()), dtype_name(dtype_v<T>));
  return static_cast<T*>(raw_data());
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = detach().to(dtype_v<T>).contiguous();  // a read, not part of any graph
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}

double Tensor::item() const {
  if (numel() != 1) fail("item: tensor {} has {} elements, not one", shape_string(), numel());
  return visit_dtype(dtype(), [&](auto tag) { return double(*static_cast<decltype(tag)*>(raw_data())); });
}

double Tensor::at(const std::vector<int64_t>& index) const {
  if (int64_t(index.size()) != dim())
    fail("at: {} indices for a tensor of shape {}", index.size(), shape_string());
  int64_t off = 0;
  for (int64_t d = 0; d < dim(); ++d) {
    if (index[d] < 0 || index[d] >= shape()[d]) fail("at: index {} out of range for shape {}", index[d], shape_string());
    off += index[d] * strides()[d];
  }
  return visit_dtype(dtype(), [&](auto tag) { return double(static_cast<decltype(tag)*>(raw_data())[off]); });
}

// ---- autograd ----

Tensor& Tensor::requires_grad_(bool on) {
  if (on && !is_floating(dtype()))
    fail("requires_grad_: only floating-point tensors can require grad (this one is {} {})", shape_string(),
         dtype_name(dtype()));
  if (!is_leaf()) fail("requires_grad_: {} is not a leaf; use detach() first", shape_string());
  impl().requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }

void Tensor::set_grad(const Tensor& g) {
  if (g.defined() && g.shape() != shape())
    fail("set_grad: gradient {} does not match tensor {}", g.shape_string(), shape_string());
  impl().grad = g.defined() ? g.impl_ptr() : nullptr;
}

void Tensor::zero_grad() { impl().grad = nullptr; }

void Tensor::backward(const Tensor& gradient, bool retain_graph) const { run_backward(*this, gradient, retain_graph); }

Tensor Tensor::detach() const {
  if (!impl_) return Tensor();
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->shape = impl_->shape;
  impl->strides = impl_->strides;
  impl->offset = impl_->offset;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

// ---- copies and views ----

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype());
  detail::copy_strided(*this, out);
  return record(out, "clone", {*this}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Tensor Tensor::contiguous() const { return tessera::contiguous(*this); }

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  Tensor src = tessera::contiguous(detach());
  Tensor out = empty(shape(), target);
  visit_dtype(dtype(), [&](auto from_tag) {
    using From = decltype(from_tag);
    visit_dtype(target, [&](auto to_tag) {
      using To = decltype(to_tag);
      const From* s = static_cast<const From*>(src.raw_data());
      To* d = static_cast<To*>(out.raw_data());
      for (int64_t i = 0, n = numel(); i < n; ++i) d[i] = static_cast<To>(s[i]);
    });
  });
  if (!is_floating(target) || !is_floating(dtype())) return out;
  const DType source = dtype();
  return record(out, "to", {*this}, [source](const Tensor& g) { return std::vector<Tensor>{g.to(source)}; });
}

Tensor Tensor::reshape(const Shape& s) const { return tessera::reshape(*this, s); }

Tensor Tensor::view(const Shape& s) const {
  if (!is_contiguous()) fail("view: tensor {} is not contiguous; use reshape()", shape_string());
  return tessera::reshape(*this, s);
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  const int64_t s = normalize_dim(start_dim, dim(), "flatten");
  const int64_t e = normalize_dim(end_dim, dim(), "flatten");
  Shape out(shape().begin(), shape().begin() + s);
  int64_t merged = 1;
  for (int64_t d = s; d <= e; ++d) merged *= shape()[d];
  out.push_back(merged);
  out.insert(out.end(), shape().begin() + e + 1, shape().end());
  return reshape(out);
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const { return tessera::transpose(*this, d0, d1); }
Tensor Tensor::permute(const std::vector<int64_t>& dims) const { return tessera::permute(*this, dims); }
Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  return tessera::slice(*this, d, start, end, step);
}
Tensor Tensor::select(int64_t d, int64_t index) const {
  const int64_t nd = normalize_dim(d, dim(), "select");
  const int64_t i = index < 0 ? index + shape()[nd] : index;
  if (i < 0 || i >= shape()[nd])
    fail("select: index {} is out of range for dim {} of size {} (tensor {})", index, nd, shape()[nd], shape_string());
  return slice(nd, i, i + 1).squeeze(nd);
}
Tensor Tensor::unsqueeze(int64_t d) const { return tessera::unsqueeze(*this, d); }
Tensor Tensor::squeeze(int64_t d) const { return tessera::squeeze(*this, d); }
Tensor Tensor::expand(const Shape& s) const { return tessera::expand(*this, s); }

void Tensor::copy_(const Tensor& src) {
  if (src.shape() != shape())
    fail("copy_: source {} does not match destination {}", src.shape_string(), shape_string());
  if (numel() == 0) return;
  Tensor converted = src.detach().to(dtype());
  // A source that shares our storage (x.copy_(x.t())) is copied out first so no element is
  // overwritten before it is read.
  if (converted.storage() == storage()) {
    Tensor copy = empty(shape(), dtype());
    detail::copy_strided(converted, copy);
    converted = copy;
  }
  if (is_contiguous()) {
    detail::copy_strided(converted, detach());
  } else {
    Tensor tmp = tessera::contiguous(converted);
    // Walk the destination's strides with the (contiguous) source.
    detail::StridedLoop loop = detail::merge_dims(shape(), {tmp.strides(), strides()});
    const size_t es = element_size(dtype());
    const char* s = static_cast<const char*>(tmp.raw_data());
    char* d = static_cast<char*>(raw_data());
    detail::for_each_run(loop, [&](const int64_t* off, int64_t n) {
      for (int64_t i = 0; i < n; ++i)
        std::memcpy(d + (off[1] + i * loop.strides[1].back()) * es, s + (off[0] + i * loop.strides[0].back()) * es, es);
    });
  }
}

void Tensor::fill_(double value) {
  visit_dtype(dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T v = static_cast<T>(value);
    if (is_contiguous()) {
      T* p = data<T>();
      for (int64_t i = 0, n = numel(); i < n; ++i) p[i] = v;
    } else {
      Tensor filled = full(shape(), value, dtype());
      copy_(filled);
    }
  });
}

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol) {
  if (a.shape() != b.shape()) return false;
  const std::vector<double> x = a.to_vector<double>();
  const std::vector<double> y = b.to_vector<double>();
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) || std::isnan(y[i])) return false;
    if (std::abs(x[i] - y[i]) > atol + rtol * std::abs(y[i])) return false;
  }
  return true;
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "Tensor(undefined)";
  os << "Tensor(shape=" << t.shape_string() << ", dtype=" << dtype_name(t.dtype());
  if (t.requires_grad()) os << ", requires_grad";
  if (t.grad_fn()) os << ", grad_fn=" << t.grad_fn()->name;
  os << ")\n";
  const std::vector<double> v = t.to_vector<double>();
  const int64_t cols = t.dim() == 0 ? 1 : t.shape().back();
  const size_t limit = 64;
  os << "[";
  for (size_t i = 0; i < v.size() && i < limit; ++i) {
    if (i > 0) os << ((cols > 0 && i % size_t(cols) == 0) ? "\n " : ", ");
    os << fmt::format("{:.6g}", v[i]);
  }
  if (v.size() > limit) os << ", ... (" << v.size() << " values)";
  return os << "]";
}

#define TESSERA_INSTANTIATE(T)                                                          \
  template Tensor Tensor::from_vector<T>(const std::vector<T>&, const Shape&);          \
  template T* Tensor::data<T>() const;                                                  \
  template std::vector<T> Tensor::to_vector<T>() const;
TESSERA_INSTANTIATE(float)
TESSERA_INSTANTIATE(double)
TESSERA_INSTANTIATE(int32_t)
TESSERA_INSTANTIATE(int64_t)
TESSERA_INSTANTIATE(uint8_t)
#undef TESSERA_INSTANTIATE

}  // namespace tessera
