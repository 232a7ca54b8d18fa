// Reductions over any set of dims: the kept dims are moved to the front and the reduced ones to
// the back, so that every reduction is a row reduction of a [kept, reduced] matrix.
#include "kernels/reduce.h"

#include <algorithm>
#include <numeric>

#include "autograd/error.h"
#include "autograd/ops.h"

namespace tessera {
namespace {

struct Plan {
  std::vector<int64_t> order;  // permutation: kept dims, then reduced dims
  std::vector<bool> reduced;   // per input dim
  Shape kept_shape;            // output shape without keepdim
  Shape keepdim_shape;         // output shape with size-1 reduced dims
  int64_t rows = 1, cols = 1;
};

Plan plan_reduction(const Tensor& x, const std::vector<int64_t>& dims, const char* op) {
  if (!is_floating(x.dtype()))
    fail("{}: expects a floating-point tensor, got {} {}", op, dtype_name(x.dtype()), x.shape_string());
  Plan p;
  const int64_t rank = x.dim();
  p.reduced.assign(rank, dims.empty());
  for (int64_t d : dims) {
    const int64_t nd = normalize_dim(d, rank, op);
    if (p.reduced[nd]) fail("{}: dim {} given twice", op, d);
    p.reduced[nd] = true;
  }
  for (int64_t d = 0; d < rank; ++d)
    if (!p.reduced[d]) {
      p.order.push_back(d);
      p.kept_shape.push_back(x.shape()[d]);
      p.rows *= x.shape()[d];
    }
  for (int64_t d = 0; d < rank; ++d)
    if (p.reduced[d]) {
      p.order.push_back(d);
      p.cols *= x.shape()[d];
    }
  p.keepdim_shape = x.shape();
  for (int64_t d = 0; d < rank; ++d)
    if (p.reduced[d]) p.keepdim_shape[d] = 1;
  return p;
}

// x laid out as the contiguous [rows, cols] matrix of the plan.
Tensor as_rows(const Tensor& x, const Plan& p) { return x.detach().permute(p.order).contiguous(); }

// Inverse of as_rows for a full-size [rows, cols] matrix.
Tensor from_rows(const Tensor& m, const Plan& p, const Shape& x_shape) {
  Shape permuted;
  for (int64_t d : p.order) permuted.push_back(x_shape[d]);
  std::vector<int64_t> inverse(p.order.size());
  for (size_t i = 0; i < p.order.size(); ++i) inverse[p.order[i]] = int64_t(i);
  return m.reshape(permuted).permute(inverse).contiguous();
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  const Plan p = plan_reduction(x, dims, "sum");
  Tensor out = Tensor::empty(keepdim ? p.keepdim_shape : p.kept_shape, x.dtype());
  visit_floating(x.dtype(), "sum", [&](auto tag) {
    using T = decltype(tag);
    const Tensor m = as_rows(x, p);
    kernels::sum_rows(m.data<T>(), p.rows, p.cols, out.data<T>());
  });
  const Shape in_shape = x.shape(), keep = p.keepdim_shape;
  return record(out, "sum", {x}, [in_shape, keep](const Tensor& g) {
    return std::vector<Tensor>{g.reshape(keep).expand(in_shape).contiguous()};
  });
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  const Plan p = plan_reduction(x, dims, "mean");
  return mul(sum(x, dims, keepdim), 1.0 / double(std::max<int64_t>(p.cols, 1)));
}

Tensor var(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim) {
  const Plan p = plan_reduction(x, dims, "var");
  Tensor out = Tensor::empty(keepdim ? p.keepdim_shape : p.kept_shape, x.dtype());
  Tensor mu = Tensor::empty(p.keepdim_shape, x.dtype());
  visit_floating(x.dtype(), "var", [&](auto tag) {
    using T = decltype(tag);
    const Tensor m = as_rows(x, p);
    kernels::var_rows(m.data<T>(), p.rows, p.cols, correction, out.data<T>(), mu.data<T>());
  });
  if (!needs_grad({&x})) return out;
  const Tensor sx = x.detach();
  const Shape keep = p.keepdim_shape;
  const double scale = 2.0 / double(p.cols - correction);
  return record(out, "var", {x}, [sx, mu, keep, scale](const Tensor& g) {
    return std::vector<Tensor>{(sx - mu) * g.reshape(keep) * scale};
  });
}

// Like PyTorch's amax, the gradient is split evenly among the entries that tie for the maximum
// (the same rule maximum() follows for two operands); a NaN maximum passes it to the NaN.
Tensor max(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  const Plan p = plan_reduction(x, dims, "max");
  if (p.cols == 0) fail("max: reduction over an empty dim of {}", x.shape_string());
  Tensor out = Tensor::empty(keepdim ? p.keepdim_shape : p.kept_shape, x.dtype());
  auto where = std::make_shared<std::vector<int64_t>>(p.rows);
  visit_floating(x.dtype(), "max", [&](auto tag) {
    using T = decltype(tag);
    const Tensor m = as_rows(x, p);
    kernels::max_rows(m.data<T>(), p.rows, p.cols, out.data<T>(), where->data());
  });
  if (!needs_grad({&x})) return out;
  const Shape in_shape = x.shape();
  const Tensor sx = x.detach(), sy = out.detach();
  return record(out, "max", {x}, [p, where, in_shape, sx, sy](const Tensor& g) {
    Tensor m = as_rows(sx, p);  // a fresh copy unless x already had that layout
    if (m.storage() == sx.storage()) m = m.clone();
    const Tensor gc = g.contiguous();
    visit_floating(g.dtype(), "max", [&](auto tag) {
      using T = decltype(tag);
      const T* pg = gc.data<T>();
      const T* py = sy.data<T>();
      T* pm = m.data<T>();
      for (int64_t r = 0; r < p.rows; ++r) {
        T* row = pm + r * p.cols;
        int64_t ties = 0;
        for (int64_t c = 0; c < p.cols; ++c) ties += row[c] == py[r];
        for (int64_t c = 0; c < p.cols; ++c) row[c] = row[c] == py[r] ? pg[r] / T(ties) : T(0);
        if (ties == 0) row[(*where)[r]] = pg[r];
      }
    });
    return std::vector<Tensor>{from_rows(m, p, in_shape)};
  });
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  const Plan p = plan_reduction(x, {dim}, "argmax");
  Tensor idx = Tensor::empty(keepdim ? p.keepdim_shape : p.kept_shape, DType::i64);
  Tensor values = Tensor::empty({p.rows}, x.dtype());
  visit_floating(x.dtype(), "argmax", [&](auto tag) {
    using T = decltype(tag);
    const Tensor m = as_rows(x, p);
    kernels::max_rows(m.data<T>(), p.rows, p.cols, values.data<T>(), idx.data<int64_t>());
  });
  return idx;
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const int64_t lead = x.dim() - int64_t(shape.size());
  if (lead < 0) fail("sum_to: cannot sum {} to the higher rank {}", x.shape_string(), shape_to_string(shape));
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d < lead) dims.push_back(d);
    else if (shape[d - lead] == 1 && x.shape()[d] != 1) dims.push_back(d);
    else if (shape[d - lead] != x.shape()[d])
      fail("sum_to: {} does not broadcast to {}", shape_to_string(shape), x.shape_string());
  }
  return sum(x, dims, true).reshape(shape);
}

namespace {
// Moves `dim` last so the row kernels apply; returns the permutation (its own inverse).
std::vector<int64_t> last_dim_order(int64_t dim, int64_t rank) {
  std::vector<int64_t> order(rank);
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[dim], order[rank - 1]);
  return order;
}

template <bool Log>
Tensor softmax_impl(const Tensor& x, int64_t dim) {
  const char* name = Log ? "log_softmax" : "softmax";
  if (x.dim() == 0) fail("{}: needs at least one dim", name);
  if (!is_floating(x.dtype()))
    fail("{}: expects a floating-point tensor, got {} {}", name, dtype_name(x.dtype()), x.shape_string());
  const int64_t d = normalize_dim(dim, x.dim(), name);
  const auto order = last_dim_order(d, x.dim());
  const Tensor m = x.detach().permute(order).contiguous();
  const int64_t cols = x.shape()[d], rows = cols == 0 ? 0 : x.numel() / cols;
  Tensor y = Tensor::empty(m.shape(), x.dtype());
  visit_floating(x.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (Log) kernels::log_softmax_rows(m.data<T>(), rows, cols, y.data<T>());
    else kernels::softmax_rows(m.data<T>(), rows, cols, y.data<T>());
  });
  Tensor out = d == x.dim() - 1 ? y : y.permute(order).contiguous();
  if (!needs_grad({&x})) return out;
  // Saved without history: `out` may be `y` itself, and the node must not own its own output.
  const Tensor saved = y.detach();
  return record(out, name, {x}, [saved, order, rows, cols, d](const Tensor& g) {
    const bool last = d == g.dim() - 1;
    const Tensor gm = last ? g.contiguous() : g.permute(order).contiguous();
    Tensor gx = Tensor::empty(gm.shape(), g.dtype());
    visit_floating(g.dtype(), "softmax backward", [&](auto tag) {
      using T = decltype(tag);
      if constexpr (Log) kernels::log_softmax_backward_rows(saved.data<T>(), gm.data<T>(), rows, cols, gx.data<T>());
      else kernels::softmax_backward_rows(saved.data<T>(), gm.data<T>(), rows, cols, gx.data<T>());
    });
    return std::vector<Tensor>{last ? gx : gx.permute(order).contiguous()};
  });
}
}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl<false>(x, dim); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl<true>(x, dim); }

}  // namespace tessera
