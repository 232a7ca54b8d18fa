#pragma once
// One model with its optimizer, schedule, parameter average and data: the state a step changes
// and a checkpoint captures. `tessera train` runs it (train/run/run_training.h); `tessera bench`
// times its steps.
//
// A step is one optimizer update on one batch of train.batch_size samples, whatever the number of
// processes: the batch is cut into train.accumulation x processes micro-batches (one process:
// accumulation parts; `mpirun -np N`: each process takes accumulation consecutive parts and reads
// only those rows). Each part's loss, weighted by its share of the rows, is back-propagated on its
// own and the parts' gradients are added in part order (train/gradient_sum.h), across processes
// too, so N processes give bitwise what one process with accumulation N gives. Then the NaN/Inf
// guard, optional clipping of the global gradient norm, the scheduled lr, the update, and the EMA.
//
// Exact resume: everything a step depends on is in the checkpoint — parameters, optimizer
// buffers and step, EMA, the loader's (epoch, position, seed), the default generator's state —
// and the lr is a function of the step, so a resumed run repeats the uninterrupted one bit for
// bit at the same thread count (tests/train/test_runs.cpp kills a run with SIGKILL to prove it).
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "train/checkpoint.h"
#include "train/ema.h"
#include "train/experiment.h"
#include "train/process_group.h"

namespace tessera::train {

class GradientSum;

class Trainer {
 public:
  Trainer(Recipe recipe, int threads_override);
  ~Trainer();

  struct StepResult {
    double loss = 0;       // mean over the micro-batches
    double grad_norm = 0;  // before clipping
    double lr = 0;
    int64_t epoch = 0;
    bool stop_requested = false;  // by this process or (data-parallel) any other
    double exchange_seconds = 0;  // data-parallel: adding up the processes' gradients (and waiting for them)
  };
  // One optimizer step. Throws a tessera::Error naming the step and the cause when the loss or
  // a gradient is not finite (the parameters are left untouched). `stop_requested` (Ctrl-C)
  // travels with the step's gradients, so that all processes stop after the same step.
  StepResult step(bool stop_requested = false);
  // The recipe's metrics on data.eval (on the EMA weights when eval.use_ema).
  MetricValues evaluate();
  // The task's samples from the first eval batch (Task::write_samples) into run_dir.
  void write_samples(const std::string& run_dir);
  // The task's training_state() of the model being trained.
  MetricValues training_state() const;

  // Throws naming the parameter when one is not finite: such a checkpoint could not be resumed.
  Checkpoint checkpoint() const;
  void restore(const Checkpoint& checkpoint);

  int64_t steps_done() const { return step_; }
  int64_t total_steps() const { return total_steps_; }
  int64_t images_per_step() const;
  bool has_eval() const { return eval_set_ != nullptr; }
  const nn::Module& model() const { return *model_; }
  double best_value = 0;  // of checkpoint.best_metric; NaN until the first evaluation

 private:
  Recipe recipe_;
  const ProcessGroup& group_;
  DataShape shape_;
  std::shared_ptr<nn::Module> model_;
  std::unique_ptr<Task> task_;
  std::vector<std::string> metrics_;
  std::shared_ptr<data::Dataset> train_set_, eval_set_;
  std::unique_ptr<data::Loader> loader_;
  std::unique_ptr<Optimizer> optimizer_;
  std::optional<Schedule> schedule_;
  std::optional<ParameterAverage> average_;
  double clip_ = 0;
  int64_t accumulation_ = 1, parts_ = 1, step_ = 0, total_steps_ = 0;
  uint64_t seed_ = 0;
  bool compared_parameters_ = false;
  std::unique_ptr<GradientSum> gradients_;  // when a batch is cut into parts  // data-parallel: the processes' parameters checked equal once
};

}  // namespace tessera::train
