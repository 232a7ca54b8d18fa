#include "kernels/modulation.h"

#include "kernels/modulation_ref.h"
#include "kernels/row_blocks.h"
#include "kernels/simd_table.h"

namespace tessera::kernels {
namespace {
// fn(sample) over the samples: a sample is one row of by_row_blocks (whole samples per thread, so
// their sums stay on one thread; its grain and streaming-store choice).
template <class Fn>
void by_samples(int64_t samples, int64_t tokens, int64_t cols, Fn&& fn) {
  by_row_blocks(samples, tokens * cols, [&](int64_t first, int64_t count) {
    for (int64_t i = first; i < first + count; ++i) fn(i);
  });
}
}  // namespace

void modulated_layer_norm_forward(const float* x, const float* gamma, const float* beta, int64_t samples,
                                  int64_t tokens, int64_t cols, float eps, float* y, float* mean, float* rstd) {
  const SimdTable* s = simd_table();
  if (!s) return ref::modulated_layer_norm_forward(x, gamma, beta, samples, tokens, cols, eps, y, mean, rstd);
  by_samples(samples, tokens, cols, [&](int64_t i) {
    const int64_t o = i * tokens * cols;
    s->layer_norm_forward(x + o, nullptr, gamma + i * cols, beta + i * cols, tokens, cols, eps, nullptr, y + o,
                          mean + i * tokens, rstd + i * tokens);
  });
}

void modulated_layer_norm_forward(const double* x, const double* gamma, const double* beta, int64_t samples,
                                  int64_t tokens, int64_t cols, double eps, double* y, double* mean, double* rstd) {
  ref::modulated_layer_norm_forward(x, gamma, beta, samples, tokens, cols, eps, y, mean, rstd);
}

void modulated_layer_norm_backward(const float* x, const float* gamma, const float* mean, const float* rstd,
                                   const float* dy, int64_t samples, int64_t tokens, int64_t cols, float* dx,
                                   float* dgamma, float* dbeta) {
  const SimdTable* s = simd_table();
  if (!s)
    return ref::modulated_layer_norm_backward(x, gamma, mean, rstd, dy, samples, tokens, cols, dx, dgamma, dbeta);
  // The row kernel overwrites non-null dgamma, dbeta with the column sums of the rows it is given:
  // one call per sample gives that sample's sums.
  by_samples(samples, tokens, cols, [&](int64_t i) {
    const int64_t o = i * tokens * cols;
    s->layer_norm_backward(x + o, gamma + i * cols, mean + i * tokens, rstd + i * tokens, dy + o, tokens, cols, dx + o,
                           dgamma ? dgamma + i * cols : nullptr, dbeta ? dbeta + i * cols : nullptr);
  });
}

void modulated_layer_norm_backward(const double* x, const double* gamma, const double* mean, const double* rstd,
                                   const double* dy, int64_t samples, int64_t tokens, int64_t cols, double* dx,
                                   double* dgamma, double* dbeta) {
  ref::modulated_layer_norm_backward(x, gamma, mean, rstd, dy, samples, tokens, cols, dx, dgamma, dbeta);
}

void gated_add_forward(const float* x, const float* a, const float* gate, int64_t samples, int64_t tokens,
                       int64_t cols, float* y) {
  const SimdTable* s = simd_table();
  if (!s) return ref::gated_add_forward(x, a, gate, samples, tokens, cols, y);
  by_samples(samples, tokens, cols, [&](int64_t i) {
    const int64_t o = i * tokens * cols;
    s->gated_add_forward(x + o, a + o, gate + i * cols, tokens, cols, y + o);
  });
}

void gated_add_forward(const double* x, const double* a, const double* gate, int64_t samples, int64_t tokens,
                       int64_t cols, double* y) {
  ref::gated_add_forward(x, a, gate, samples, tokens, cols, y);
}

void gated_add_backward(const float* a, const float* gate, const float* dy, int64_t samples, int64_t tokens,
                        int64_t cols, float* da, float* dgate) {
  const SimdTable* s = simd_table();
  if (!s) return ref::gated_add_backward(a, gate, dy, samples, tokens, cols, da, dgate);
  by_samples(samples, tokens, cols, [&](int64_t i) {
    const int64_t o = i * tokens * cols;
    s->gated_add_backward(a + o, gate + i * cols, dy + o, tokens, cols, da ? da + o : nullptr,
                          dgate ? dgate + i * cols : nullptr);
  });
}

void gated_add_backward(const double* a, const double* gate, const double* dy, int64_t samples, int64_t tokens,
                        int64_t cols, double* da, double* dgate) {
  ref::gated_add_backward(a, gate, dy, samples, tokens, cols, da, dgate);
}

}  // namespace tessera::kernels
