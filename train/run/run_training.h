#pragma once
// `tessera train`: a whole run — its folder, the steps, progress and metrics.jsonl, evaluations,
// checkpoints, Ctrl-C and exact resume (see train/trainer.h for what a step is and why resume is
// exact).
#include <cstdint>
#include <string>
#include <vector>

namespace tessera::train {

struct RunOptions {
  std::string recipe_path;              // ignored with resume_dir
  std::vector<std::string> overrides;   // --set key=value
  std::string run_dir;                  // "" = runs/<recipe name>
  bool overwrite = false;               // clear a previous run in run_dir first
  std::string resume_dir;               // continue from <dir>/last.h5
  int threads = 0;                      // 0 = recipe's, then TESSERA_THREADS
  int64_t debug_kill_after = 0;         // SIGKILL ourselves after this step (tests; of several processes, the last)
  int64_t debug_interrupt_after = 0;    // raise debug_signal after this step (tests)
  int debug_signal = 2;                 // SIGINT; SIGTERM, SIGHUP (tests)
};

// Runs a training job; returns the process exit code (0 done, 130 interrupted by Ctrl-C).
int run_training(const RunOptions& options);

}  // namespace tessera::train
