#include "kernels/cross_entropy.h"

#include <stdexcept>
#include <string>

#include "kernels/cross_entropy_ref.h"
#include "kernels/row_blocks.h"
#include "kernels/simd_table.h"

namespace tessera::kernels {
namespace {

// Checked before any thread starts: an exception must not leave an OpenMP region.
void check_targets(const int64_t* targets, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    if (targets[r] >= cols)
      throw std::invalid_argument("cross_entropy: target " + std::to_string(targets[r]) + " of row " +
                                  std::to_string(r) + " is out of range for " + std::to_string(cols) + " classes");
}

}  // namespace

void cross_entropy(const float* logits, const int64_t* targets, int64_t rows, int64_t cols, float grad_scale,
                   float* loss, float* dlogits) {
  check_targets(targets, rows, cols);
  const SimdTable* s = simd_table();
  if (!s) return ref::cross_entropy(logits, targets, rows, cols, grad_scale, loss, dlogits);
  by_row_blocks(rows, cols, [&](int64_t r, int64_t n) {
    s->cross_entropy(logits + r * cols, targets + r, n, cols, grad_scale, loss + r,
                     dlogits ? dlogits + r * cols : nullptr);
  });
}

void cross_entropy(const double* logits, const int64_t* targets, int64_t rows, int64_t cols, double grad_scale,
                   double* loss, double* dlogits) {
  check_targets(targets, rows, cols);
  ref::cross_entropy(logits, targets, rows, cols, grad_scale, loss, dlogits);
}

}  // namespace tessera::kernels
