#pragma once
// A run's evaluations on data.eval, every eval.every steps and at the last step: the metrics,
// the task's samples in the run folder, and whether checkpoint.best_metric improved on the best
// so far (then best.h5 is due).
#include <string>

#include "train/run/run_folder.h"
#include "train/trainer.h"

namespace tessera::train {

class Evaluation {
 public:
  explicit Evaluation(const RunFolder& folder);

  bool due(const Trainer& trainer) const;

  struct Result {
    MetricValues values;
    bool is_best = false;
  };
  // Updates trainer.best_value when the best metric improved.
  Result run(Trainer& trainer) const;

 private:
  const RunFolder& folder_;
  int64_t every_ = 0;
  std::string best_metric_;  // "" = no best.h5
};

}  // namespace tessera::train
