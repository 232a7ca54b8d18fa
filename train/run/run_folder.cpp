#include "train/run/run_folder.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
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
  folder.overwrite = overwrite;
  if (!overwrite && fs::exists(folder.last_checkpoint()))
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
  if (!fs::exists(last)) {
    if (fs::exists(last.string() + ".tmp"))
      fail("--resume {}: no last.h5 there: the run was stopped during its first save (last.h5.tmp is incomplete); "
           "start it afresh with 'tessera train RECIPE --run-dir {} --overwrite'", run_dir, run_dir);
    fail("--resume {}: no last.h5 there, nothing to resume", run_dir);
  }
  Checkpoint checkpoint = load_checkpoint(last.string());
  require_finite_weights(checkpoint, last.string());
  Recipe recipe = Recipe::parse(checkpoint.meta.recipe, last.string() + " (stored recipe)", overrides);
  recipe.set_name(checkpoint.meta.recipe_name);
  return RunFolder{run_dir, std::move(recipe), std::move(checkpoint)};
}

RunLock RunFolder::prepare(int64_t step) const {
  RunLock lock(dir);
  if (overwrite) clear_previous_run(*this);
  write_text_atomically(recipe_file(), recipe.text());
  if (resume_point) keep_metrics_up_to(metrics_log(), step);
  return lock;
}

RunLock::RunLock(const fs::path& dir) : path_(dir / ".lock") {
  fs::create_directories(dir);
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("cannot create {}: {}", path_.string(), std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    char holder[32] = {};
    const ssize_t n = ::pread(fd_, holder, sizeof holder - 1, 0);
    ::close(fd_);
    fd_ = -1;
    fail("{} is in use by another run (tessera train, pid {}); wait for it, stop it, or pick another --run-dir",
         dir.string(), n > 0 ? std::string(holder, size_t(n)) : std::string("unknown"));
  }
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != ssize_t(pid.size())) {
    // The lock holds without the pid; only the message of a refused second run would lack it.
  }
}

RunLock::RunLock(RunLock&& other) noexcept : fd_(other.fd_), path_(std::move(other.path_)) { other.fd_ = -1; }

RunLock::~RunLock() {
  if (fd_ < 0) return;
  std::error_code ignored;
  fs::remove(path_, ignored);  // while still locked: a run starting now makes a fresh file
  ::close(fd_);
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
