#pragma once
// Scalar reference of the fused AdamW update (see adamw.h).
#include <cmath>
#include <cstdint>

#include "kernels/adamw.h"

namespace tessera::kernels::ref {

// The per-step constants, computed once in double.
struct AdamWStep {
  double decay, beta1, beta2, step_size, inv_sqrt_bc2, eps;
  explicit AdamWStep(const AdamWHyper& h)
      : decay(1.0 - h.lr * h.weight_decay),
        beta1(h.beta1),
        beta2(h.beta2),
        step_size(h.lr / (1.0 - std::pow(h.beta1, double(h.step)))),
        inv_sqrt_bc2(1.0 / std::sqrt(1.0 - std::pow(h.beta2, double(h.step)))),
        eps(h.eps) {}
};

template <class T>
void adamw_update(T* p, const T* g, T* m, T* v, int64_t n, const AdamWStep& s) {
  const T decay = T(s.decay), b1 = T(s.beta1), b2 = T(s.beta2), step_size = T(s.step_size);
  const T inv_sqrt_bc2 = T(s.inv_sqrt_bc2), eps = T(s.eps);
  for (int64_t i = 0; i < n; ++i) {
    const T mi = b1 * m[i] + (T(1) - b1) * g[i];
    const T vi = b2 * v[i] + (T(1) - b2) * g[i] * g[i];
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps);
  }
}

}  // namespace tessera::kernels::ref
