#include "train/registry.h"

namespace tessera::train {

// Function-local statics: registrations run during static initialisation, in any order.
Registry<ModelFactory>& models() {
  static Registry<ModelFactory> r("model");
  return r;
}
Registry<TaskFactory>& tasks() {
  static Registry<TaskFactory> r("task");
  return r;
}
Registry<LossFactory>& losses() {
  static Registry<LossFactory> r("loss");
  return r;
}
Registry<OptimizerFactory>& optimizers() {
  static Registry<OptimizerFactory> r("optimizer");
  return r;
}
Registry<ScheduleFactory>& schedules() {
  static Registry<ScheduleFactory> r("schedule");
  return r;
}
Registry<MetricFactory>& metrics() {
  static Registry<MetricFactory> r("metric");
  return r;
}

}  // namespace tessera::train
