#include "train/schedule.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "autograd/error.h"

namespace tessera::train {

Schedule::Schedule(ScheduleOptions o) : o_(o) {
  if (o.total_steps < 1) fail("schedule: total steps must be at least 1 (got {})", o.total_steps);
  if (o.warmup_steps < 0 || o.warmup_steps > o.total_steps)
    fail("schedule.warmup_steps: {} must be in [0, {}] (the run's optimizer steps)", o.warmup_steps, o.total_steps);
}

double Schedule::lr(int64_t step) const {
  if (step < o_.warmup_steps) return o_.base_lr * double(step + 1) / double(o_.warmup_steps);
  if (o_.decay == Decay::constant) return o_.base_lr;
  const int64_t span = o_.total_steps - o_.warmup_steps;
  // Progress runs from 0 at the first decay step to 1 at the last step.
  const double t = span <= 1 ? 1.0 : std::clamp(double(step - o_.warmup_steps) / double(span - 1), 0.0, 1.0);
  const double factor = o_.decay == Decay::cosine ? 0.5 * (1 + std::cos(std::numbers::pi * t)) : 1 - t;
  return o_.min_lr + (o_.base_lr - o_.min_lr) * factor;
}

}  // namespace tessera::train

// ---- recipe registrations (schedule.type) ----
namespace tessera::train {

Registry<ScheduleFactory>& schedules() {
  static Registry<ScheduleFactory> registry("schedule");
  return registry;
}

namespace {

ScheduleFactory factory(Decay decay) {
  return [decay](const Section& s, double base_lr, int64_t total_steps) {
    const double min_lr = decay == Decay::constant ? base_lr : s.number("min_lr");
    if (min_lr > base_lr) fail("{}.min_lr: {} is above optim.lr {}", s.path(), min_lr, base_lr);
    // A short run (--set train.steps=150 on a recipe warming up over 500) warms up over all of it.
    int64_t warmup = s.integer("warmup_steps");
    if (warmup > total_steps) {
      fmt::print(stderr, "notice: {}.warmup_steps {} is longer than the run's {} steps; warming up over all {}\n",
                 s.path(), warmup, total_steps, total_steps);
      warmup = total_steps;
    }
    return Schedule(ScheduleOptions{decay, base_lr, min_lr, warmup, total_steps});
  };
}

std::vector<Field> decay_fields() { return {number("min_lr", 0, "learning rate reached at the last step", 0)}; }

const Registration<ScheduleFactory> constant{schedules(), {"constant", "optim.lr after the warm-up", "", {}, factory(Decay::constant)}};
const Registration<ScheduleFactory> cosine{
    schedules(), {"cosine", "half-cosine decay from optim.lr to min_lr after the warm-up", "", decay_fields(), factory(Decay::cosine)}};
const Registration<ScheduleFactory> linear{
    schedules(), {"linear", "linear decay from optim.lr to min_lr after the warm-up", "", decay_fields(), factory(Decay::linear)}};

}  // namespace
}  // namespace tessera::train
