#include "train/run/run_training.h"

#include <csignal>
#include <cstdio>
#include <optional>

#include "train/process_group.h"

#include "train/run/checkpoints.h"
#include "train/run/evaluation.h"
#include "train/report/run_report.h"
#include "train/run/interrupt.h"
#include "train/run/progress.h"
#include "train/run/run_folder.h"
#include "train/trainer.h"

namespace tessera::train {

namespace {

// Process 0 prepares the folder; the others only read the recipe (and, resuming, last.h5),
// so nothing is written twice.
RunFolder open_run_folder(const RunOptions& options, const ProcessGroup& group) {
  if (!options.resume_dir.empty()) return RunFolder::for_resume(options.resume_dir, options.overrides);
  if (!group.is_writer()) return RunFolder::for_reader(options.recipe_path, options.overrides, options.run_dir);
  return RunFolder::for_new_run(options.recipe_path, options.overrides, options.run_dir, options.overwrite);
}

void print_resolved_recipe(const RunFolder& folder, const RunOptions& options, const ProcessGroup& group) {
  const std::string from = folder.resume_point ? "resuming " + folder.dir.string() : options.recipe_path;
  fmt::print("tessera train: {} -> {}\n---\n{}---\n", from, folder.dir.string(), folder.recipe.text());
  if (group.size() > 1) {
    const Section train = folder.recipe.section("train");
    const int64_t parts = group.size() * train.integer("accumulation");
    fmt::print("data parallel: {} processes, each batch of {} cut into {} micro-batches of ~{} rows, {} per process\n",
               group.size(), train.integer("batch_size"), parts, train.integer("batch_size") / parts,
               train.integer("accumulation"));
  }
}

// The loss or a gradient was NaN/Inf: the trainer left the weights alone; say which checkpoint is good.
Trainer::StepResult step_or_stop(Trainer& trainer, const RunCheckpoints& checkpoints, bool stop_requested) {
  try {
    return trainer.step(stop_requested);
  } catch (const Error& e) {
    checkpoints.stop_keeping_last_good(e);
  }
}

int stop_on_interrupt(const Trainer& trainer, const RunFolder& folder, const RunCheckpoints& checkpoints,
                      const ProcessGroup& group) {
  if (!group.is_writer()) return 130;
  checkpoints.save_last(trainer);
  fmt::print("\ninterrupted: saved {} at step {}; continue with: tessera train --resume {}\n",
             folder.last_checkpoint().string(), trainer.steps_done(), folder.dir.string());
  return 130;
}

// Lets tests kill or interrupt a run at a known step; with several processes the kill takes the
// last one only, the case of one machine of a job dying.
void debug_signals(const RunOptions& options, int64_t step, const ProcessGroup& group) {
  if (options.debug_kill_after == step && group.rank() == group.size() - 1) std::raise(SIGKILL);
  if (options.debug_interrupt_after == step) std::raise(options.debug_signal);
}

// The run's report.html, after an evaluation; a report that fails is said, and training goes on.
void refresh_report(const RunFolder& folder) {
  try {
    write_run_report(folder.dir.string());
  } catch (const Error& e) {
    fmt::print(stderr, "warning: the run report was not refreshed: {}\n", e.what());
  }
}

int train_in_group(const RunOptions& options, const ProcessGroup& group) {
  const bool writer = group.is_writer();
  const RunFolder folder = open_run_folder(options, group);
  if (writer) print_resolved_recipe(folder, options, group);
  Trainer trainer(folder.recipe, options.threads);
  if (folder.resume_point) {
    try {
      trainer.restore(*folder.resume_point);
    } catch (const Error& e) {
      fail("resuming from {}: {}", folder.last_checkpoint().string(), e.what());  // name the file, not just the tensor
    }
  }
  std::optional<RunLock> lock;  // the folder is this run's until it ends
  if (writer) lock.emplace(folder.prepare(trainer.steps_done()));

  std::optional<ProgressLog> progress;
  if (writer) progress.emplace(folder, trainer);
  const Evaluation evaluation(folder);
  const RunCheckpoints checkpoints(folder);
  const InterruptScope interrupt;
  const bool report = folder.recipe.section("log").boolean("report");

  while (trainer.steps_done() < trainer.total_steps()) {
    // One process stops at once; several learn of a Ctrl-C with the step's gradients, so that
    // all stop after the same step.
    if (group.size() == 1 && interrupt.requested()) return stop_on_interrupt(trainer, folder, checkpoints, group);
    const Trainer::StepResult step = step_or_stop(trainer, checkpoints, interrupt.requested());
    if (progress) progress->step_done(trainer, step);

    bool is_best = false;
    const bool evaluated = evaluation.due(trainer);
    if (evaluated) {
      std::optional<ProgressLog::Paused> paused;
      if (progress) paused.emplace(*progress);
      const Evaluation::Result result = evaluation.run(trainer);
      if (progress) progress->evaluated(trainer.steps_done(), step.epoch, result.values, result.is_best);
      is_best = result.is_best;
    }

    if (writer) checkpoints.save_due(trainer, is_best);
    if (writer && evaluated && report) refresh_report(folder);
    if (step.stop_requested && group.size() > 1) return stop_on_interrupt(trainer, folder, checkpoints, group);
    debug_signals(options, trainer.steps_done(), group);
  }
  if (progress) progress->finished();
  return 0;
}

}  // namespace

int run_training(const RunOptions& options) {
  const ProcessGroup& group = ProcessGroup::world();
  return group.run("train", [&] { return train_in_group(options, group); });
}

}  // namespace tessera::train
