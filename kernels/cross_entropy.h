#pragma once
// Cross-entropy fused with log-softmax: one pass over the logits gives each row's loss and,
// if asked, its gradient, without materialising the log-probabilities.
#include <cstdint>

namespace tessera::kernels {

// For row r with target t = targets[r]:
//   loss[r] = logsumexp(logits[r, :]) - logits[r, t]
//   dlogits[r, c] = grad_scale * (softmax(logits[r, :])[c] - [c == t])   (when dlogits is not null)
// A negative target means "ignore this row": loss 0 and a zero gradient row. grad_scale is what
// the caller's reduction needs, e.g. 1/count for a mean. Throws std::invalid_argument (naming the
// row) for a target >= cols. dlogits may alias logits.
void cross_entropy(const float* logits, const int64_t* targets, int64_t rows, int64_t cols, float grad_scale,
                   float* loss, float* dlogits);
void cross_entropy(const double* logits, const int64_t* targets, int64_t rows, int64_t cols, double grad_scale,
                   double* loss, double* dlogits);

}  // namespace tessera::kernels
