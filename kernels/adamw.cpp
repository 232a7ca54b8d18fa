#include "kernels/adamw.h"

#include "kernels/adamw_ref.h"
#include "kernels/simd_table.h"
#include "kernels/threads.h"

namespace tessera::kernels {

void adamw_update(float* params, const float* grads, float* m, float* v, int64_t n, const AdamWHyper& h) {
  const ref::AdamWStep step(h);
  const SimdTable* s = simd_table();
  if (!s) return ref::adamw_update(params, grads, m, v, n, step);
  const AdamWConstants k{float(step.decay),     float(step.beta1),        float(step.beta2),
                         float(step.step_size), float(step.inv_sqrt_bc2), float(step.eps)};
  parallel_for(n, 16384, [&](int64_t b, int64_t e) { s->adamw(params + b, grads + b, m + b, v + b, e - b, k); });
}

void adamw_update(double* params, const double* grads, double* m, double* v, int64_t n, const AdamWHyper& h) {
  ref::adamw_update(params, grads, m, v, n, ref::AdamWStep(h));
}

}  // namespace tessera::kernels
