#include "train/task.h"

#include <algorithm>

#include "autograd/error.h"

namespace tessera::train {

// Function-local statics: registrations run during static initialisation, in any order.
Registry<TaskFactory>& tasks() {
  static Registry<TaskFactory> registry("task");
  return registry;
}
Registry<LossFactory>& losses() {
  static Registry<LossFactory> registry("loss");
  return registry;
}
Registry<MetricFactory>& metrics() {
  static Registry<MetricFactory> registry("metric");
  return registry;
}

void require_unit_pixels(const Tensor& images, const char* who) {
  const Tensor c = images.contiguous();
  const float* p = c.data<float>();
  const auto [lo, hi] = std::minmax_element(p, p + c.numel());
  if (c.numel() > 0 && (*lo < -1e-6f || *hi > 1 + 1e-6f))
    fail("{} pixels in [0, 1], but a batch spans [{}, {}]: set data.mean: [0] and data.std: [1]", who, *lo, *hi);
}

}  // namespace tessera::train
