#include "train/run/run_training.h"

#include <csignal>
#include <cstdio>

#include "train/run/checkpoints.h"
#include "train/run/evaluation.h"
#include "train/run/interrupt.h"
#include "train/run/progress.h"
#include "train/run/run_folder.h"
#include "train/trainer.h"

namespace tessera::train {

namespace {

RunFolder open_run_folder(const RunOptions& options) {
  if (!options.resume_dir.empty()) return RunFolder::for_resume(options.resume_dir, options.overrides);
  return RunFolder::for_new_run(options.recipe_path, options.overrides, options.run_dir, options.overwrite);
}

void print_resolved_recipe(const RunFolder& folder, const RunOptions& options) {
  const std::string from = folder.resume_point ? "resuming " + folder.dir.string() : options.recipe_path;
  fmt::print("tessera train: {} -> {}\n---\n{}---\n", from, folder.dir.string(), folder.recipe.text());
}

// The loss or a gradient was NaN/Inf: the trainer left the weights alone; say which checkpoint is good.
Trainer::StepResult step_or_stop(Trainer& trainer, const RunCheckpoints& checkpoints) {
  try {
    return trainer.step();
  } catch (const Error& e) {
    checkpoints.stop_keeping_last_good(e);
  }
}

int stop_on_interrupt(const Trainer& trainer, const RunFolder& folder, const RunCheckpoints& checkpoints) {
  checkpoints.save_last(trainer);
  fmt::print("\ninterrupted: saved {} at step {}; continue with: tessera train --resume {}\n",
             folder.last_checkpoint().string(), trainer.steps_done(), folder.dir.string());
  return 130;
}

// Lets tests kill or interrupt a run at a known step.
void debug_signals(const RunOptions& options, int64_t step) {
  if (options.debug_kill_after == step) std::raise(SIGKILL);
  if (options.debug_interrupt_after == step) std::raise(SIGINT);
}

}  // namespace

int run_training(const RunOptions& options) {
  const RunFolder folder = open_run_folder(options);
  print_resolved_recipe(folder, options);
  Trainer trainer(folder.recipe, options.threads);
  if (folder.resume_point) trainer.restore(*folder.resume_point);
  folder.prepare(trainer.steps_done());

  ProgressLog progress(folder, trainer);
  const Evaluation evaluation(folder);
  const RunCheckpoints checkpoints(folder);
  const InterruptScope interrupt;

  while (trainer.steps_done() < trainer.total_steps()) {
    if (interrupt.requested()) return stop_on_interrupt(trainer, folder, checkpoints);
    const Trainer::StepResult step = step_or_stop(trainer, checkpoints);
    progress.step_done(trainer, step);

    bool is_best = false;
    if (evaluation.due(trainer)) {
      const ProgressLog::Paused paused(progress);
      const Evaluation::Result result = evaluation.run(trainer);
      progress.evaluated(trainer.steps_done(), step.epoch, result.values, result.is_best);
      is_best = result.is_best;
    }

    checkpoints.save_due(trainer, is_best);
    debug_signals(options, trainer.steps_done());
  }
  progress.finished();
  return 0;
}

}  // namespace tessera::train
