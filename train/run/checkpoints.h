#pragma once
// A run's checkpoints: last.h5 every checkpoint.every steps and at the last step (copied to
// step_NNNNNNN.h5 when checkpoint.keep > 0, keeping the newest `keep` of those), best.h5 when the
// best metric improves, and last.h5 on Ctrl-C. Each is written to a temporary file and renamed
// (train/checkpoint.h), so a failure never damages the previous one.
#include "autograd/error.h"
#include "train/run/run_folder.h"
#include "train/trainer.h"

namespace tessera::train {

class RunCheckpoints {
 public:
  explicit RunCheckpoints(const RunFolder& folder);

  // Saves what is due after the trainer's latest step.
  void save_due(const Trainer& trainer, bool is_best) const;
  void save_last(const Trainer& trainer) const;

  // The NaN/Inf guard's exit: the cause, and which checkpoint is still good.
  [[noreturn]] void stop_keeping_last_good(const Error& cause) const;

 private:
  void save_step_copy(const Checkpoint& checkpoint, int64_t step) const;

  const RunFolder& folder_;
  int64_t every_ = 0, keep_ = 0;
};

}  // namespace tessera::train
