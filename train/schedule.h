#pragma once
// Learning-rate schedules, by optimizer step: an optional linear warm-up, then constant, cosine
// or linear decay to min_lr at the last step. A schedule is a pure function of the step, so a
// resumed run needs nothing but the step count to continue it.
#include <cstdint>
#include <memory>
#include <string>

#include "train/registry.h"

namespace tessera::train {

enum class Decay { constant, cosine, linear };

struct ScheduleOptions {
  Decay decay = Decay::constant;
  double base_lr = 1e-3;
  double min_lr = 0;          // reached at the last step (cosine, linear)
  int64_t warmup_steps = 0;   // lr rises linearly to base_lr over these steps
  int64_t total_steps = 1;
};

class Schedule {
 public:
  explicit Schedule(ScheduleOptions options);
  // The lr of optimizer step `step` (0-based): during warm-up base_lr * (step + 1) / warmup_steps,
  // so the first step already moves; then the decay over the remaining steps.
  double lr(int64_t step) const;
  const ScheduleOptions& options() const { return o_; }

 private:
  ScheduleOptions o_;
};

// schedule.type: each schedule registers its factory beside its code (schedule.cpp).
using ScheduleFactory = std::function<Schedule(const Section& schedule, double base_lr, int64_t total_steps)>;
Registry<ScheduleFactory>& schedules();

}  // namespace tessera::train
