#pragma once
// Per-sample modulation of token rows, as a diffusion transformer conditions its blocks (DiT's
// adaLN-Zero): a LayerNorm whose scale and shift differ per sample, and a residual add whose branch
// is scaled per sample by a gate. Data is [samples, tokens, cols] row-major; the per-sample
// vectors are [samples, cols]. Each is one pass each way where the elementwise ops it replaces
// took six to eight (and a transposed copy for every sum over the tokens).
#include <cstdint>

namespace tessera::kernels {

// y[i] = layer_norm(x[i]) * gamma[i] + beta[i] for each sample i (LayerNorm without an affine of
// its own; DiT's gamma is 1 + scale). Saves mean and rstd [samples * tokens] for the backward.
void modulated_layer_norm_forward(const float* x, const float* gamma, const float* beta, int64_t samples,
                                  int64_t tokens, int64_t cols, float eps, float* y, float* mean, float* rstd);
void modulated_layer_norm_forward(const double* x, const double* gamma, const double* beta, int64_t samples,
                                  int64_t tokens, int64_t cols, double eps, double* y, double* mean, double* rstd);

// dx of the above, and dgamma[i, c] = sum over sample i's tokens of dy * xhat, dbeta[i, c] = sum of
// dy (overwritten; either may be null). Sums run in token order within one thread: the result
// does not depend on the thread count.
void modulated_layer_norm_backward(const float* x, const float* gamma, const float* mean, const float* rstd,
                                   const float* dy, int64_t samples, int64_t tokens, int64_t cols, float* dx,
                                   float* dgamma, float* dbeta);
void modulated_layer_norm_backward(const double* x, const double* gamma, const double* mean, const double* rstd,
                                   const double* dy, int64_t samples, int64_t tokens, int64_t cols, double* dx,
                                   double* dgamma, double* dbeta);

// y[i] = x[i] + a[i] * gate[i] for each sample i: a residual stream x plus a branch a scaled per
// column by the sample's gate.
void gated_add_forward(const float* x, const float* a, const float* gate, int64_t samples, int64_t tokens,
                       int64_t cols, float* y);
void gated_add_forward(const double* x, const double* a, const double* gate, int64_t samples, int64_t tokens,
                       int64_t cols, double* y);

// da = dy * gate[i]; dgate[i, c] = sum over sample i's tokens of dy * a (overwritten, in token
// order). Either output may be null. The gradient of x is dy itself.
void gated_add_backward(const float* a, const float* gate, const float* dy, int64_t samples, int64_t tokens,
                        int64_t cols, float* da, float* dgate);
void gated_add_backward(const double* a, const double* gate, const double* dy, int64_t samples, int64_t tokens,
                        int64_t cols, double* da, double* dgate);

}  // namespace tessera::kernels
