#include "train/task.h"

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

}  // namespace tessera::train
