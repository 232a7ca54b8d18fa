#pragma once
// The folder a run writes into, and the recipe in force there. A new run goes to --run-dir or
// runs/<recipe name> and refuses a folder that already holds a run, unless --overwrite clears it;
// --resume DIR continues DIR/last.h5 under the recipe stored in it.
//
// The folder holds recipe.yaml (the resolved recipe), metrics.jsonl, last.h5, best.h5 (when
// checkpoint.best_metric is set), step_NNNNNNN.h5 (when checkpoint.keep > 0) and whatever the
// task writes there (samples/).
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "train/checkpoint.h"
#include "train/recipe.h"

namespace tessera::train {

// Held while a run writes into its folder (an flock on DIR/.lock holding the pid): a second
// `tessera train` on the same folder is refused instead of mixing two runs' files. The kernel
// drops the lock when the process dies, however it dies.
class RunLock {
 public:
  explicit RunLock(const std::filesystem::path& dir);  // throws naming the folder and the holder
  ~RunLock();
  RunLock(RunLock&& other) noexcept;
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;
  RunLock& operator=(RunLock&&) = delete;

 private:
  int fd_ = -1;
  std::filesystem::path path_;
};

struct RunFolder {
  std::filesystem::path dir;
  Recipe recipe;
  std::optional<Checkpoint> resume_point;  // the last.h5 being continued
  bool overwrite = false;                  // --overwrite: prepare() clears what a previous run left

  // Neither creates the folder: a run that fails to start leaves nothing behind.
  static RunFolder for_new_run(const std::string& recipe_path, const std::vector<std::string>& overrides,
                               const std::string& run_dir, bool overwrite);
  static RunFolder for_resume(const std::string& run_dir, const std::vector<std::string>& overrides);
  // A data-parallel process other than the first: the same recipe and folder, checking nothing
  // in it (process 0 does, and alone writes there).
  static RunFolder for_reader(const std::string& recipe_path, const std::vector<std::string>& overrides,
                              const std::string& run_dir);

  // Called once the run has been set up (recipe, data and model checked): locks the folder,
  // clears a previous run's files under --overwrite (so a recipe that fails to start loses
  // nothing), creates the folder and writes recipe.yaml. On resume, drops the lines a killed run
  // logged after `step`, the step of the checkpoint it continues from. Hold the lock for the run.
  [[nodiscard]] RunLock prepare(int64_t step) const;

  std::filesystem::path last_checkpoint() const { return dir / "last.h5"; }
  std::filesystem::path best_checkpoint() const { return dir / "best.h5"; }
  std::filesystem::path step_checkpoint(int64_t step) const;
  std::vector<std::filesystem::path> step_checkpoints() const;  // oldest first
  std::filesystem::path metrics_log() const { return dir / "metrics.jsonl"; }
  std::filesystem::path recipe_file() const { return dir / "recipe.yaml"; }
};

}  // namespace tessera::train
