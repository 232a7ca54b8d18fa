#pragma once
// The training loop behind `tessera train` (and the steps `tessera bench` times).
//
// A step is one optimizer update: `train.accumulation` micro-batches, each loss scaled by
// 1/accumulation and backpropagated, then the NaN/Inf guard, optional clipping of the global
// gradient norm, the scheduled lr, the update, and the EMA. Around the steps: progress lines,
// metrics.jsonl, periodic evaluation, checkpoints (last.h5, best.h5, step_NNNNNNN.h5 rotation),
// Ctrl-C handling and exact resume.
//
// Exact resume: everything a step depends on is in the checkpoint — parameters, optimizer
// buffers and step, EMA, the loader's (epoch, position, seed), the default generator's state —
// and the lr is a function of the step, so a resumed run repeats the uninterrupted one bit for
// bit at the same thread count (tests/train/test_resume.cpp kills a run with SIGKILL to prove it).
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "train/checkpoint.h"
#include "train/experiment.h"

namespace tessera::train {

struct RunOptions {
  std::string recipe_path;              // ignored with resume_dir
  std::vector<std::string> overrides;   // --set key=value
  std::string run_dir;                  // "" = runs/<recipe name>
  std::string resume_dir;               // continue from <dir>/last.h5
  int threads = 0;                      // 0 = recipe's, then TESSERA_THREADS
  int64_t debug_kill_after = 0;         // SIGKILL ourselves after this step (tests)
  int64_t debug_interrupt_after = 0;    // SIGINT ourselves after this step (tests)
};

// Runs a training job; returns the process exit code (0 done, 130 interrupted by Ctrl-C).
int run_training(const RunOptions& options);

// One model with its optimizer, schedule and data: the state a checkpoint captures.
class Trainer {
 public:
  Trainer(Recipe recipe, int threads_override);
  ~Trainer();

  struct StepResult {
    double loss = 0;       // mean over the micro-batches
    double grad_norm = 0;  // before clipping
    double lr = 0;
    int64_t epoch = 0;
  };
  // One optimizer step. Throws a tessera::Error naming the step and the cause when the loss or
  // a gradient is not finite (the parameters are left untouched).
  StepResult step();
  MetricValues evaluate();
  // The task's samples from the first eval batch (Task::write_samples) into run_dir.
  void write_samples(const std::string& run_dir);
  // The task's training_state() of the model being trained.
  MetricValues training_state() const;

  Checkpoint checkpoint() const;
  void restore(const Checkpoint& checkpoint);

  const Recipe& recipe() const { return recipe_; }
  int64_t steps_done() const { return step_; }
  int64_t total_steps() const { return total_steps_; }
  int64_t images_per_step() const;
  bool has_eval() const { return eval_set_ != nullptr; }
  nn::Module& model() { return *model_; }
  double best_value = 0;  // of checkpoint.best_metric; NaN until the first evaluation

 private:
  Recipe recipe_;
  DataShape shape_;
  std::shared_ptr<nn::Module> model_;
  std::unique_ptr<Task> task_;
  std::vector<std::string> metrics_;
  std::shared_ptr<data::Dataset> train_set_, eval_set_;
  std::unique_ptr<data::Loader> loader_;
  std::unique_ptr<Optimizer> optimizer_;
  std::optional<Schedule> schedule_;
  nn::NamedTensors ema_;  // empty when train.ema_decay is 0
  double ema_decay_ = 0, clip_ = 0;
  int64_t accumulation_ = 1, step_ = 0, total_steps_ = 0;
};

}  // namespace tessera::train
