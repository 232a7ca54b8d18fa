#include "autograd/ops/losses.h"

#include <cmath>
#include <vector>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops.h"
#include "kernels/reduce.h"

namespace tessera {
namespace {

std::vector<int64_t> class_targets(const Tensor& targets, int64_t batch, int64_t classes) {
  if (targets.dtype() != DType::i64 && targets.dtype() != DType::i32)
    fail("cross_entropy: targets must be i64 or i32 class indices, got {}", dtype_name(targets.dtype()));
  if (targets.dim() != 1 || targets.size(0) != batch)
    fail("cross_entropy: targets {} do not match logits with batch {}", targets.shape_string(), batch);
  std::vector<int64_t> t = targets.to_vector<int64_t>();
  for (int64_t i = 0; i < batch; ++i)
    if (t[i] < 0 || t[i] >= classes)
      fail("cross_entropy: target {} of sample {} is outside [0, {})", t[i], i, classes);
  return t;
}

template <class T>
double cross_entropy_forward(const T* logp, const std::vector<int64_t>& target, int64_t batch, int64_t classes,
                             double smoothing) {
  double total = 0;
  for (int64_t i = 0; i < batch; ++i) {
    const T* row = logp + i * classes;
    double loss = -(1 - smoothing) * double(row[target[i]]);
    if (smoothing != 0) {
      double row_sum = 0;
      for (int64_t c = 0; c < classes; ++c) row_sum += double(row[c]);
      loss -= smoothing / double(classes) * row_sum;
    }
    total += loss;
  }
  return total / double(batch);
}

// gx[i, c] = g / B * (softmax[i, c] - target[i, c])
template <class T>
void cross_entropy_backward(const T* logp, const std::vector<int64_t>& target, int64_t batch, int64_t classes,
                            double smoothing, double g, T* gx) {
  const double scale = g / double(batch), off = smoothing / double(classes);
  for (int64_t i = 0; i < batch; ++i) {
    const T* row = logp + i * classes;
    T* out = gx + i * classes;
    for (int64_t c = 0; c < classes; ++c) out[c] = T(scale * (std::exp(double(row[c])) - off));
    out[target[i]] = T(double(out[target[i]]) - scale * (1 - smoothing));
  }
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, double label_smoothing) {
  if (!is_floating(logits.dtype())) fail("cross_entropy: logits must be f32 or f64, got {}", dtype_name(logits.dtype()));
  if (logits.dim() != 2) fail("cross_entropy: logits must be [batch, classes], got {}", logits.shape_string());
  if (!(label_smoothing >= 0 && label_smoothing <= 1))
    fail("cross_entropy: label_smoothing {} is outside [0, 1]", label_smoothing);
  const int64_t batch = logits.size(0), classes = logits.size(1);
  if (batch == 0 || classes == 0) fail("cross_entropy: empty logits {}", logits.shape_string());
  const std::vector<int64_t> target = class_targets(targets, batch, classes);

  const Tensor x = logits.detach().contiguous();
  Tensor logp = Tensor::empty(x.shape(), x.dtype());
  double value = 0;
  visit_floating(x.dtype(), "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    kernels::log_softmax_rows(x.data<T>(), batch, classes, logp.data<T>());
    value = cross_entropy_forward(logp.data<T>(), target, batch, classes, label_smoothing);
  });
  Tensor out = Tensor::scalar(value, x.dtype());
  if (!needs_grad({&logits})) return out;
  return record(out, "cross_entropy", {logits}, [logp, target, batch, classes, label_smoothing](const Tensor& g) {
    Tensor gx = Tensor::empty(logp.shape(), logp.dtype());
    const double gv = g.item();
    visit_floating(logp.dtype(), "cross_entropy backward", [&](auto tag) {
      using T = decltype(tag);
      cross_entropy_backward(logp.data<T>(), target, batch, classes, label_smoothing, gv, gx.data<T>());
    });
    return std::vector<Tensor>{gx};
  });
}

Tensor mse_loss(const Tensor& prediction, const Tensor& target) {
  if (prediction.shape() != target.shape())
    fail("mse_loss: prediction {} and target {} differ in shape", prediction.shape_string(), target.shape_string());
  if (prediction.numel() == 0) fail("mse_loss: empty input {}", prediction.shape_string());
  return mean(square(prediction - target.detach()));
}

}  // namespace tessera
