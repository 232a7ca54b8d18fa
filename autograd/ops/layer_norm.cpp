// LayerNorm over the last axis with a fused backward (autograd/ops/layer_norm.h): one pass of
// kernels/layer_norm.h each way, the per-row mean and 1/std kept from the forward.
#include "kernels/layer_norm.h"

#include <vector>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops/layer_norm.h"

namespace tessera {
namespace {

void check_affine(const Tensor& x, const Tensor& p, const char* what) {
  if (!p.defined()) return;
  if (p.dim() != 1 || p.size(0) != x.size(-1))
    fail("layer_norm: {} has shape {}, expected [{}] for input {}", what, p.shape_string(), x.size(-1),
         x.shape_string());
  if (p.dtype() != x.dtype())
    fail("layer_norm: {} is {} but the input is {}", what, dtype_name(p.dtype()), dtype_name(x.dtype()));
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  if (x.dim() < 1) fail("layer_norm: needs an input with at least one dim, got a scalar");
  if (x.size(-1) == 0) fail("layer_norm: the normalised (last) dim of {} is empty", x.shape_string());
  if (!(eps > 0)) fail("layer_norm: eps must be positive, got {}", eps);
  check_affine(x, weight, "weight");
  check_affine(x, bias, "bias");
  const int64_t cols = x.size(-1), rows = x.numel() / cols;
  const Tensor xc = x.detach().contiguous();
  const Tensor wc = weight.defined() ? weight.detach().contiguous() : Tensor();
  const Tensor bc = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  Tensor mean = Tensor::empty({rows}, x.dtype()), rstd = Tensor::empty({rows}, x.dtype());
  visit_floating(x.dtype(), "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    kernels::layer_norm_forward(xc.data<T>(), wc.defined() ? wc.data<T>() : nullptr,
                                bc.defined() ? bc.data<T>() : nullptr, rows, cols, T(eps), y.data<T>(), mean.data<T>(),
                                rstd.data<T>());
  });
  if (!needs_grad({&x, &weight, &bias})) return y;
  const bool gx = x.requires_grad(), gw = weight.defined() && weight.requires_grad(),
             gb = bias.defined() && bias.requires_grad();
  const Shape x_shape = x.shape();
  return record(y, "layer_norm", {x, weight, bias},
                [xc, wc, mean, rstd, rows, cols, gx, gw, gb, x_shape](const Tensor& g) {
                  const Tensor gc = g.contiguous();
                  // the kernel always writes dx; without a gradient for x it lands in scratch
                  Tensor dx = Tensor::empty(x_shape, g.dtype());
                  Tensor dw = gw ? Tensor::empty({cols}, g.dtype()) : Tensor();
                  Tensor db = gb ? Tensor::empty({cols}, g.dtype()) : Tensor();
                  visit_floating(g.dtype(), "layer_norm backward", [&](auto tag) {
                    using T = decltype(tag);
                    kernels::layer_norm_backward(xc.data<T>(), wc.defined() ? wc.data<T>() : nullptr,
                                                 mean.data<T>(), rstd.data<T>(), gc.data<T>(), rows, cols,
                                                 dx.data<T>(), gw ? dw.data<T>() : nullptr,
                                                 gb ? db.data<T>() : nullptr);
                  });
                  return std::vector<Tensor>{gx ? dx : Tensor(), dw, db};
                });
}

}  // namespace tessera
