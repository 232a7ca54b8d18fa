// Elementwise ops: forward through kernels/elementwise.h, one inner run at a time, and backward
// as compositions of the same ops (summed back to each input's shape where it broadcast).
#include "kernels/elementwise.h"

#include "autograd/error.h"
#include "autograd/ops.h"
#include "autograd/ops/strided.h"
#include "kernels/threads.h"

namespace tessera {
namespace {

using kernels::BinaryOp;
using kernels::UnaryOp;

void check_float(const Tensor& x, const char* op) {
  if (!is_floating(x.dtype())) fail("{}: expects a floating-point tensor, got {} {}", op, dtype_name(x.dtype()), x.shape_string());
}

// Large tensors split across threads in runs of this many elements.
constexpr int64_t kGrain = 1 << 15;

Tensor binary_forward(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = kernels::binary_op_name(op);
  if (a.dtype() != b.dtype())
    fail("{}: dtypes differ: {} {} and {} {}", name, a.shape_string(), dtype_name(a.dtype()), b.shape_string(),
         dtype_name(b.dtype()));
  check_float(a, name);
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(shape, a.dtype());
  if (out.numel() == 0) return out;
  visit_floating(a.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    const T* pa = static_cast<const T*>(a.raw_data());
    const T* pb = static_cast<const T*>(b.raw_data());
    T* py = out.data<T>();
    // The common cases, same shape and contiguous or one side a single value, are one run.
    // Equal numel alone is not enough: [1, 3] with [3, 1] broadcasts to 9 elements.
    const int64_t n = out.numel();
    if (a.is_contiguous() && b.is_contiguous() && (a.numel() == n || a.numel() == 1) && (b.numel() == n || b.numel() == 1)) {
      const int64_t sa = a.numel() == 1 ? 0 : 1, sb = b.numel() == 1 ? 0 : 1;
      kernels::parallel_for(n, kGrain, [&](int64_t begin, int64_t end) {
        kernels::binary(op, pa + begin * sa, sa, pb + begin * sb, sb, py + begin, end - begin);
      });
      return;
    }
    detail::StridedLoop loop = detail::merge_dims(
        shape, {detail::broadcast_strides(a, shape), detail::broadcast_strides(b, shape), out.strides()});
    const int64_t sa = loop.strides[0].back(), sb = loop.strides[1].back();
    detail::for_each_run(loop, [&](const int64_t* off, int64_t n) {
      if ((sa == 0 || sa == 1) && (sb == 0 || sb == 1)) {
        kernels::binary(op, pa + off[0], sa, pb + off[1], sb, py + off[2], n);
      } else {
        for (int64_t i = 0; i < n; ++i)
          kernels::binary(op, pa + off[0] + i * sa, 0, pb + off[1] + i * sb, 0, py + off[2] + i, 1);
      }
    });
  });
  return out;
}

Tensor unary_forward(UnaryOp op, const Tensor& x, double p0 = 0, double p1 = 0) {
  check_float(x, kernels::unary_op_name(op));
  const Tensor src = x.is_contiguous() ? x : x.detach().contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  visit_floating(x.dtype(), kernels::unary_op_name(op), [&](auto tag) {
    using T = decltype(tag);
    const T* px = src.data<T>();
    T* py = out.data<T>();
    kernels::parallel_for(x.numel(), kGrain, [&](int64_t begin, int64_t end) {
      kernels::unary(op, px + begin, py + begin, end - begin, T(p0), T(p1));
    });
  });
  return out;
}

// gx = gy * f'(x), from the saved input and output.
Tensor unary_grad(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, double p0, double p1) {
  const Tensor cx = x.contiguous(), cy = y.contiguous(), cg = gy.contiguous();
  Tensor gx = Tensor::empty(x.shape(), x.dtype());
  visit_floating(x.dtype(), kernels::unary_op_name(op), [&](auto tag) {
    using T = decltype(tag);
    const T *px = cx.data<T>(), *py = cy.data<T>(), *pg = cg.data<T>();
    T* pgx = gx.data<T>();
    kernels::parallel_for(x.numel(), kGrain, [&](int64_t begin, int64_t end) {
      kernels::unary_backward(op, px + begin, py + begin, pg + begin, pgx + begin, end - begin, T(p0), T(p1));
    });
  });
  return gx;
}

Tensor unary(UnaryOp op, const Tensor& x, double p0 = 0, double p1 = 0) {
  Tensor y = unary_forward(op, x, p0, p1);
  if (!needs_grad({&x})) return y;
  const Tensor saved_x = x.detach(), saved_y = y.detach();
  return record(y, kernels::unary_op_name(op), {x}, [op, saved_x, saved_y, p0, p1](const Tensor& g) {
    return std::vector<Tensor>{unary_grad(op, saved_x, saved_y, g, p0, p1)};
  });
}

}  // namespace

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1)
      fail("{}: shapes {} and {} do not broadcast", op, shape_to_string(a), shape_to_string(b));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward(BinaryOp::add, a, b);
  const Shape sa = a.shape(), sb = b.shape();
  return record(y, "add", {a, b}, [sa, sb](const Tensor& g) { return std::vector<Tensor>{sum_to(g, sa), sum_to(g, sb)}; });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward(BinaryOp::sub, a, b);
  const Shape sa = a.shape(), sb = b.shape();
  return record(y, "sub", {a, b}, [sa, sb](const Tensor& g) { return std::vector<Tensor>{sum_to(g, sa), sum_to(-g, sb)}; });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward(BinaryOp::mul, a, b);
  if (!needs_grad({&a, &b})) return y;
  const Tensor sa = a.detach(), sb = b.detach();
  const bool ga = a.requires_grad(), gb = b.requires_grad();
  return record(y, "mul", {a, b}, [sa, sb, ga, gb](const Tensor& g) {
    return std::vector<Tensor>{ga ? sum_to(g * sb, sa.shape()) : Tensor(), gb ? sum_to(g * sa, sb.shape()) : Tensor()};
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward(BinaryOp::div, a, b);
  if (!needs_grad({&a, &b})) return y;
  const Tensor sa = a.detach(), sb = b.detach(), sy = y.detach();
  const bool ga = a.requires_grad(), gb = b.requires_grad();
  return record(y, "div", {a, b}, [sa, sb, sy, ga, gb](const Tensor& g) {
    Tensor gb_ = gb ? sum_to(-(g * sy) / sb, sb.shape()) : Tensor();
    return std::vector<Tensor>{ga ? sum_to(g / sb, sa.shape()) : Tensor(), gb_};
  });
}

// The gradient goes to the larger (smaller) operand; on ties it is split evenly, as PyTorch does.
static Tensor select_grad(const Tensor& g, const Tensor& mine, const Tensor& other, bool larger) {
  const Tensor win = larger ? binary_forward(BinaryOp::sub, mine, other) : binary_forward(BinaryOp::sub, other, mine);
  Tensor share = Tensor::empty(win.shape(), win.dtype());
  visit_floating(win.dtype(), larger ? "maximum" : "minimum", [&](auto tag) {
    using T = decltype(tag);
    const T* w = win.data<T>();
    T* s = share.data<T>();
    for (int64_t i = 0, n = win.numel(); i < n; ++i) s[i] = w[i] > 0 ? T(1) : (w[i] == 0 ? T(0.5) : T(0));
  });
  return sum_to(g * share, mine.shape());
}

Tensor maximum(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward(BinaryOp::maximum, a, b);
  const Tensor sa = a.detach(), sb = b.detach();
  return record(y, "maximum", {a, b}, [sa, sb](const Tensor& g) {
    return std::vector<Tensor>{select_grad(g, sa, sb, true), select_grad(g, sb, sa, true)};
  });
}

Tensor minimum(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward(BinaryOp::minimum, a, b);
  const Tensor sa = a.detach(), sb = b.detach();
  return record(y, "minimum", {a, b}, [sa, sb](const Tensor& g) {
    return std::vector<Tensor>{select_grad(g, sa, sb, false), select_grad(g, sb, sa, false)};
  });
}

Tensor add(const Tensor& a, double b) { return unary(UnaryOp::scale, a, 1.0, b); }
Tensor mul(const Tensor& a, double b) { return unary(UnaryOp::scale, a, b, 0.0); }
Tensor rsub(double a, const Tensor& b) { return unary(UnaryOp::scale, b, -1.0, a); }
Tensor rdiv(double a, const Tensor& b) { return mul(pow(b, -1.0), a); }

Tensor neg(const Tensor& x) { return unary(UnaryOp::neg, x); }
Tensor exp(const Tensor& x) { return unary(UnaryOp::exp, x); }
Tensor log(const Tensor& x) { return unary(UnaryOp::log, x); }
Tensor sqrt(const Tensor& x) { return unary(UnaryOp::sqrt, x); }
Tensor rsqrt(const Tensor& x) { return unary(UnaryOp::pow, x, -0.5); }
Tensor square(const Tensor& x) { return unary(UnaryOp::square, x); }
Tensor pow(const Tensor& x, double exponent) {
  if (exponent == 2.0) return square(x);
  return unary(UnaryOp::pow, x, exponent);
}
Tensor abs(const Tensor& x) { return unary(UnaryOp::abs, x); }
Tensor clamp(const Tensor& x, double min, double max) {
  if (min > max) fail("clamp: min {} is greater than max {}", min, max);
  return unary(UnaryOp::clamp, x, min, max);
}
Tensor tanh(const Tensor& x) { return unary(UnaryOp::tanh, x); }
Tensor sigmoid(const Tensor& x) { return unary(UnaryOp::sigmoid, x); }
Tensor relu(const Tensor& x) { return unary(UnaryOp::relu, x); }
Tensor silu(const Tensor& x) { return unary(UnaryOp::silu, x); }
Tensor gelu(const Tensor& x, GeluApproximation approximation) {
  return activate(x, approximation == GeluApproximation::tanh ? Activation::gelu_tanh : Activation::gelu_erf);
}
Tensor activate(const Tensor& x, Activation activation) {
  return activation == Activation::identity ? x : unary(kernels::activation_op(activation), x);
}

void add_(Tensor& dst, const Tensor& src, double alpha) {
  if (dst.shape() != src.shape() || dst.dtype() != src.dtype())
    fail("add_: {} {} into {} {}", src.shape_string(), dtype_name(src.dtype()), dst.shape_string(),
         dtype_name(dst.dtype()));
  if (!dst.is_contiguous()) fail("add_: destination {} is not contiguous", dst.shape_string());
  check_float(dst, "add_");
  const Tensor s = src.is_contiguous() ? src : src.detach().contiguous();
  visit_floating(dst.dtype(), "add_", [&](auto tag) {
    using T = decltype(tag);
    const T* ps = s.data<T>();
    T* pd = dst.data<T>();
    kernels::parallel_for(dst.numel(), kGrain, [&](int64_t begin, int64_t end) {
      kernels::axpy(T(alpha), ps + begin, pd + begin, end - begin);
    });
  });
}

void mul_(Tensor& dst, double factor) {
  if (!dst.is_contiguous()) fail("mul_: destination {} is not contiguous", dst.shape_string());
  check_float(dst, "mul_");
  visit_floating(dst.dtype(), "mul_", [&](auto tag) {
    using T = decltype(tag);
    T* p = dst.data<T>();
    kernels::unary(UnaryOp::scale, p, p, dst.numel(), T(factor), T(0));
  });
}

}  // namespace tessera
