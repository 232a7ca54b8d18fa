// Linear + bias + activation with its backward (autograd/ops/fused_linear.h):
//   forward   pre = x W^T (GEMM), y = act(pre + b) (one fused pass)
//   backward  d = dy * act'(pre + b) with db = column sums of d (one fused pass),
//             dx = d W, dW = d^T x (GEMMs writing straight into contiguous results).
#include "kernels/bias_act.h"
#include "kernels/gemm.h"

#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops/fused_linear.h"

namespace tessera {
namespace {

void check_arguments(const Tensor& x, const Tensor& w, const Tensor& b) {
  if (w.dim() != 2) fail("fused_linear: weight must be [out, in], got {}", w.shape_string());
  if (x.dim() < 1 || x.size(-1) != w.size(1))
    fail("fused_linear: input {} does not end in the weight's {} input features (weight {})", x.shape_string(),
         w.size(1), w.shape_string());
  if (b.defined() && (b.dim() != 1 || b.size(0) != w.size(0)))
    fail("fused_linear: bias {} does not match the weight's {} outputs", b.shape_string(), w.size(0));
  if (x.dtype() != w.dtype() || (b.defined() && b.dtype() != w.dtype()))
    fail("fused_linear: input, weight and bias dtypes differ ({}, {}{})", dtype_name(x.dtype()),
         dtype_name(w.dtype()), b.defined() ? fmt::format(", {}", dtype_name(b.dtype())) : "");
}

}  // namespace

Tensor fused_linear(const Tensor& x, const Tensor& weight, const Tensor& bias, Activation act) {
  check_arguments(x, weight, bias);
  const int64_t in = weight.size(1), out = weight.size(0), rows = in == 0 ? 0 : x.numel() / in;
  Shape out_shape = x.shape();
  out_shape.back() = out;
  const Tensor xc = x.detach().contiguous(), wc = weight.detach().contiguous();
  const Tensor bc = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor pre = Tensor::empty(out_shape, x.dtype());
  // identity needs no pre-activation for its backward, so y is computed in place
  Tensor y = act == Activation::identity ? pre : Tensor::empty(out_shape, x.dtype());
  visit_floating(x.dtype(), "fused_linear", [&](auto tag) {
    using T = decltype(tag);
    if (in == 0) pre.fill_(0);
    else kernels::gemm({false, true, rows, out, in, in, in, out}, T(1), xc.data<T>(), wc.data<T>(), T(0), pre.data<T>());
    kernels::bias_act_forward(act, pre.data<T>(), bc.defined() ? bc.data<T>() : nullptr, rows, out, y.data<T>());
  });
  if (!needs_grad({&x, &weight, &bias})) return y;
  const bool gx = x.requires_grad(), gw = weight.requires_grad(), gb = bias.defined() && bias.requires_grad();
  const Tensor saved_pre = act == Activation::identity ? Tensor() : pre.detach();
  const Shape x_shape = x.shape();
  return record(y, "fused_linear", {x, weight, bias},
                [xc, wc, bc, saved_pre, act, rows, in, out, gx, gw, gb, x_shape](const Tensor& g) {
                  const Tensor gc = g.contiguous();
                  // identity's d is the incoming gradient itself: only the bias needs a pass over it
                  Tensor d = act == Activation::identity ? gc : Tensor::empty(gc.shape(), g.dtype());
                  Tensor dx = gx ? Tensor::empty(x_shape, g.dtype()) : Tensor();
                  Tensor dw = gw ? Tensor::empty({out, in}, g.dtype()) : Tensor();
                  Tensor db = gb ? Tensor::empty({out}, g.dtype()) : Tensor();
                  visit_floating(g.dtype(), "fused_linear backward", [&](auto tag) {
                    using T = decltype(tag);
                    if (act == Activation::identity) {
                      if (gb) kernels::bias_gradient(gc.data<T>(), rows, out, db.data<T>());
                    } else {
                      kernels::bias_act_backward(act, saved_pre.data<T>(), bc.defined() ? bc.data<T>() : nullptr,
                                                 gc.data<T>(), rows, out, d.data<T>(), gb ? db.data<T>() : nullptr);
                    }
                    if (gx) {
                      if (out == 0) dx.fill_(0);
                      else kernels::gemm({false, false, rows, in, out, out, in, in}, T(1), d.data<T>(), wc.data<T>(),
                                         T(0), dx.data<T>());
                    }
                    if (gw) {
                      if (rows == 0) dw.fill_(0);
                      else kernels::gemm({true, false, out, in, rows, out, in, in}, T(1), d.data<T>(), xc.data<T>(),
                                         T(0), dw.data<T>());
                    }
                  });
                  return std::vector<Tensor>{dx, dw, db};
                });
}

}  // namespace tessera
