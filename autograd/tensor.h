#pragma once
// Tensor: a strided view of shared storage, and the node of the autograd graph that made it.
// Copying a Tensor copies a handle (like torch.Tensor in Python); clone() copies data.
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "autograd/dtype.h"

namespace tessera {

using Shape = std::vector<int64_t>;

struct Node;
class Tensor;

// Aligned bytes from the caching allocator; shared by every view of it.
struct Storage {
  explicit Storage(size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data = nullptr;
  size_t bytes = 0;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;  // in elements
  int64_t offset = 0;  // in elements
  DType dtype = DType::f32;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;  // accumulated by backward() on leaves
  std::shared_ptr<Node> grad_fn;     // the op that made this tensor; null for leaves
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation ----
  static Tensor empty(const Shape& shape, DType dtype = DType::f32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32);
  static Tensor ones(const Shape& shape, DType dtype = DType::f32);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32);
  static Tensor arange(int64_t end, DType dtype = DType::f32);
  static Tensor arange(double start, double end, double step = 1, DType dtype = DType::f32);
  static Tensor scalar(double value, DType dtype = DType::f32);
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);

  // ---- description ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t offset() const { return impl().offset; }
  int64_t size(int64_t dim) const;  // negative dims count from the end
  int64_t dim() const { return int64_t(impl().shape.size()); }
  int64_t numel() const;
  DType dtype() const { return impl().dtype; }
  bool is_contiguous() const;
  std::string shape_string() const;
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }
  TensorImpl& impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& other) const { return impl_ == other.impl_; }

  // ---- element access (no autograd) ----
  // Pointer to the first element (storage + offset). Checks the dtype.
  template <class T>
  T* data() const;
  void* raw_data() const;
  template <class T>
  std::vector<T> to_vector() const;  // converted to T, in logical (row-major) order
  double item() const;               // the value of a one-element tensor
  double at(const std::vector<int64_t>& index) const;

  // ---- autograd ----
  bool requires_grad() const { return impl().requires_grad; }
  Tensor& requires_grad_(bool on = true);
  Tensor grad() const;  // undefined until a backward reaches this leaf
  void set_grad(const Tensor& g);
  void zero_grad();  // drops the gradient, as PyTorch's set_to_none
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
  // Runs reverse mode from this tensor. Without an explicit gradient it must hold one element.
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;
  // Same data, no history.
  Tensor detach() const;

  // ---- copies and views (differentiable; see ops.h for the rest) ----
  Tensor clone() const;
  Tensor contiguous() const;
  Tensor to(DType dtype) const;
  Tensor reshape(const Shape& shape) const;
  Tensor view(const Shape& shape) const;  // reshape that refuses to copy
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const { return transpose(-2, -1); }
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor expand(const Shape& shape) const;

  // In-place, outside autograd: used by optimizers and initialisers.
  void copy_(const Tensor& src);
  void fill_(double value);

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Contiguous row-major strides for a shape.
Shape contiguous_strides(const Shape& shape);
int64_t shape_numel(const Shape& shape);
std::string shape_to_string(const Shape& shape);
// Normalises a possibly negative dim against a rank; throws naming `op` when out of range.
int64_t normalize_dim(int64_t dim, int64_t rank, const char* op);

bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8);
std::ostream& operator<<(std::ostream& os, const Tensor& t);

}  // namespace tessera
