#include "train/run/run_folder.h"

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "autograd/error.h"
#include "train/atomic_file.h"

namespace tessera::train {
namespace fs = std::filesystem;

namespace {

bool is_step_checkpoint(const fs::path& path) {
  return path.filename().string().rfind("step_", 0) == 0 && path.extension() == ".h5";
}

// --overwrite: removes what a previous run left (checkpoints, metrics, recipe), nothing else.
void clear_previous_run(const RunFolder& folder) {
  if (!fs::is_directory(folder.dir)) return;
  for (const fs::path& path : folder.step_checkpoints()) fs::remove(path);
  for (const fs::path& path : {folder.last_checkpoint(), folder.best_checkpoint(), folder.metrics_log(), folder.recipe_file()})
    fs::remove(path);
}

void keep_metrics_up_to(const fs::path& path, int64_t step) {
  std::ifstream in(path);
  std::string kept, line;
  while (std::getline(in, line)) {
    long long s = 0;
    if (std::sscanf(line.c_str(), "{\"step\": %lld", &s) == 1 && s <= step) kept += line + "\n";
  }
  write_text_atomically(path, kept);
}

}  // namespace

RunFolder RunFolder::for_new_run(const std::string& recipe_path, const std::vector<std::string>& overrides,
                                 const std::string& run_dir, bool overwrite) {
  if (recipe_path.empty()) fail("give a recipe (tessera train RECIPE) or --resume DIR");
  RunFolder folder{{}, Recipe::load(recipe_path, overrides), std::nullopt};
  folder.dir = run_dir.empty() ? fs::path("runs") / folder.recipe.name() : fs::path(run_dir);
  if (overwrite) clear_previous_run(folder);
  if (fs::exists(folder.last_checkpoint()))
    fail("{} already holds a run (last.h5); continue it with 'tessera train --resume {}', start afresh with "
         "--overwrite, or pick another --run-dir",
         folder.dir.string(), folder.dir.string());
  return folder;
}

RunFolder RunFolder::for_reader(const std::string& recipe_path, const std::vector<std::string>& overrides,
                                const std::string& run_dir) {
  if (recipe_path.empty()) fail("give a recipe (tessera train RECIPE) or --resume DIR");
  RunFolder folder{{}, Recipe::load(recipe_path, overrides), std::nullopt};
  folder.dir = run_dir.empty() ? fs::path("runs") / folder.recipe.name() : fs::path(run_dir);
  return folder;
}

RunFolder RunFolder::for_resume(const std::string& run_dir, const std::vector<std::string>& overrides) {
  const fs::path last = fs::path(run_dir) / "last.h5";
  if (!fs::exists(last)) fail("--resume {}: no last.h5 there, nothing to resume", run_dir);
  Checkpoint checkpoint = load_checkpoint(last.string());
  Recipe recipe = Recipe::parse(checkpoint.meta.recipe, last.string() + " (stored recipe)", overrides);
  recipe.set_name(checkpoint.meta.recipe_name);
  return RunFolder{run_dir, std::move(recipe), std::move(checkpoint)};
}

void RunFolder::prepare(int64_t step) const {
  fs::create_directories(dir);
  write_text_atomically(recipe_file(), recipe.text());
  if (resume_point) keep_metrics_up_to(metrics_log(), step);
}

fs::path RunFolder::step_checkpoint(int64_t step) const { return dir / fmt::format("step_{:07}.h5", step); }

std::vector<fs::path> RunFolder::step_checkpoints() const {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir))
    if (is_step_checkpoint(entry.path())) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace tessera::train
