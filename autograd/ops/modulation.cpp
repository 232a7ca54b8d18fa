// Per-sample modulation (autograd/ops/modulation.h) on kernels/modulation.h.
#include "autograd/ops/modulation.h"

#include <vector>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops/elementwise.h"
#include "kernels/modulation.h"

namespace tessera {
namespace {

// Checks x [N, T, C] (and `other` of x's shape when defined) against per-sample vectors [N, C].
void check_shapes(const char* op, const Tensor& x, const Tensor& other, const char* other_name,
                  const std::vector<std::pair<const char*, const Tensor*>>& per_sample) {
  if (!x.defined() || x.dim() != 3 || !is_floating(x.dtype()))
    fail("{}: x must be real [N, T, C], got {}", op, x.defined() ? x.shape_string() : "undefined");
  if (other_name && (!other.defined() || other.shape() != x.shape()))
    fail("{}: {} must have x's shape {}, got {}", op, other_name, x.shape_string(),
         other.defined() ? other.shape_string() : "undefined");
  for (const auto& [name, t] : per_sample)
    if (!t->defined() || t->dim() != 2 || t->size(0) != x.size(0) || t->size(1) != x.size(2))
      fail("{}: x {} needs {} [{}, {}], got {}", op, x.shape_string(), name, x.size(0), x.size(2),
           t->defined() ? t->shape_string() : "undefined");
  std::vector<const Tensor*> all{&x};
  if (other_name) all.push_back(&other);
  for (const auto& p : per_sample) all.push_back(p.second);
  for (const Tensor* t : all)
    if (t->dtype() != x.dtype())
      fail("{}: every input must be {} like x, got {}", op, dtype_name(x.dtype()), dtype_name(t->dtype()));
}

}  // namespace

Tensor modulated_layer_norm(const Tensor& x, const Tensor& shift, const Tensor& scale, double eps) {
  const char* op = "modulated_layer_norm";
  check_shapes(op, x, Tensor(), nullptr, {{"shift", &shift}, {"scale", &scale}});
  if (!(eps > 0)) fail("{}: eps must be positive, got {}", op, eps);
  const int64_t n = x.size(0), t = x.size(1), c = x.size(2);
  if (c == 0) fail("{}: the normalised (last) dim of {} is empty", op, x.shape_string());
  const Tensor xc = x.detach().contiguous();
  const Tensor gamma = add(scale.detach(), 1.0).contiguous();  // no graph: the backward is ours
  const Tensor beta = shift.detach().contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  Tensor mean = Tensor::empty({n * t}, x.dtype()), rstd = Tensor::empty({n * t}, x.dtype());
  visit_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    kernels::modulated_layer_norm_forward(xc.data<T>(), gamma.data<T>(), beta.data<T>(), n, t, c, T(eps),
                                          y.data<T>(), mean.data<T>(), rstd.data<T>());
  });
  if (!needs_grad({&x, &shift, &scale})) return y;
  const bool g_x = x.requires_grad(), g_shift = shift.requires_grad(), g_scale = scale.requires_grad();
  return record(y, op, {x, shift, scale}, [xc, gamma, mean, rstd, n, t, c, g_x, g_shift, g_scale](const Tensor& g) {
    const Tensor gc = g.contiguous();
    Tensor dx = Tensor::empty({n, t, c}, g.dtype());  // always: the kernel writes it
    Tensor dscale = g_scale ? Tensor::empty({n, c}, g.dtype()) : Tensor();
    Tensor dshift = g_shift ? Tensor::empty({n, c}, g.dtype()) : Tensor();
    visit_floating(g.dtype(), "modulated_layer_norm backward", [&](auto tag) {
      using T = decltype(tag);
      kernels::modulated_layer_norm_backward(xc.data<T>(), gamma.data<T>(), mean.data<T>(), rstd.data<T>(),
                                             gc.data<T>(), n, t, c, dx.data<T>(),
                                             g_scale ? dscale.data<T>() : nullptr,
                                             g_shift ? dshift.data<T>() : nullptr);
    });
    return std::vector<Tensor>{g_x ? dx : Tensor(), dshift, dscale};
  });
}

Tensor gated_add(const Tensor& x, const Tensor& a, const Tensor& gate) {
  const char* op = "gated_add";
  check_shapes(op, x, a, "a", {{"gate", &gate}});
  const int64_t n = x.size(0), t = x.size(1), c = x.size(2);
  const Tensor xc = x.detach().contiguous(), ac = a.detach().contiguous(), gatec = gate.detach().contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  visit_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    kernels::gated_add_forward(xc.data<T>(), ac.data<T>(), gatec.data<T>(), n, t, c, y.data<T>());
  });
  if (!needs_grad({&x, &a, &gate})) return y;
  const bool g_x = x.requires_grad(), g_a = a.requires_grad(), g_gate = gate.requires_grad();
  return record(y, op, {x, a, gate}, [ac, gatec, n, t, c, g_x, g_a, g_gate](const Tensor& g) {
    const Tensor gc = g.contiguous();
    Tensor da = g_a ? Tensor::empty({n, t, c}, g.dtype()) : Tensor();
    Tensor dgate = g_gate ? Tensor::empty({n, c}, g.dtype()) : Tensor();
    visit_floating(g.dtype(), "gated_add backward", [&](auto tag) {
      using T = decltype(tag);
      kernels::gated_add_backward(ac.data<T>(), gatec.data<T>(), gc.data<T>(), n, t, c, g_a ? da.data<T>() : nullptr,
                                  g_gate ? dgate.data<T>() : nullptr);
    });
    return std::vector<Tensor>{g_x ? g : Tensor(), da, dgate};
  });
}

}  // namespace tessera
