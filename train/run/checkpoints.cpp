#include "train/run/checkpoints.h"

namespace tessera::train {
namespace fs = std::filesystem;

RunCheckpoints::RunCheckpoints(const RunFolder& folder)
    : folder_(folder),
      every_(folder.recipe.section("checkpoint").integer("every")),
      keep_(folder.recipe.section("checkpoint").integer("keep")) {}

void RunCheckpoints::save_due(const Trainer& trainer, bool is_best) const {
  const int64_t s = trainer.steps_done();
  const bool periodic = (every_ > 0 && s % every_ == 0) || s == trainer.total_steps();
  if (!periodic && !is_best) return;
  Checkpoint c;
  try {
    c = trainer.checkpoint();
  } catch (const Error& e) {  // a parameter went non-finite in the update
    stop_keeping_last_good(e);
  }
  // best.h5 before last.h5: killed between the two, the run resumes from the older last.h5,
  // redoes the step and writes both; the other order would leave a finished run without best.h5.
  if (is_best) save_checkpoint(folder_.best_checkpoint().string(), c);
  if (periodic) {
    save_checkpoint(folder_.last_checkpoint().string(), c);
    if (keep_ > 0) save_step_copy(c, s);
  }
}

void RunCheckpoints::save_last(const Trainer& trainer) const {
  save_checkpoint(folder_.last_checkpoint().string(), trainer.checkpoint());
}

void RunCheckpoints::save_step_copy(const Checkpoint& checkpoint, int64_t step) const {
  save_checkpoint(folder_.step_checkpoint(step).string(), checkpoint);
  const std::vector<fs::path> files = folder_.step_checkpoints();
  for (size_t i = 0; i + size_t(keep_) < files.size(); ++i) fs::remove(files[i]);
}

void RunCheckpoints::stop_keeping_last_good(const Error& cause) const {
  const fs::path last = folder_.last_checkpoint();
  std::string good = "none was written yet";
  if (fs::exists(last)) {
    try {
      const Checkpoint c = load_checkpoint(last.string());
      require_finite_weights(c, last.string());
      good = fmt::format("{} (step {}) is intact", last.string(), c.meta.step);
    } catch (const Error& e) {
      good = fmt::format("none: {}", e.what());
    }
  }
  fail("{}\nthe last good checkpoint: {}", cause.what(), good);
}

}  // namespace tessera::train
