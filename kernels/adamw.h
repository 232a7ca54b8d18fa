#pragma once
// The AdamW update (decoupled weight decay, bias-corrected moments), fused into one pass over
// params, grads and both moments: the same arithmetic as PyTorch's torch.optim.AdamW.
#include <cstdint>

namespace tessera::kernels {

struct AdamWHyper {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
  int64_t step = 1;  // 1 for the first update (bias correction uses beta^step)
};

// p *= 1 - lr*wd;  m = beta1*m + (1-beta1)*g;  v = beta2*v + (1-beta2)*g^2;
// p -= lr/(1-beta1^step) * m / (sqrt(v)/sqrt(1-beta2^step) + eps)
void adamw_update(float* params, const float* grads, float* m, float* v, int64_t n, const AdamWHyper& h);
void adamw_update(double* params, const double* grads, double* m, double* v, int64_t n, const AdamWHyper& h);

}  // namespace tessera::kernels
