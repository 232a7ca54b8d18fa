#include "train/run/progress.h"

#include <cmath>
#include <cstdio>

#include "kernels/threads.h"
#include "train/json.h"

namespace tessera::train {

namespace {

// "m:ss" or "h:mm:ss"; "?" before the speed is known.
std::string duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t s = int64_t(seconds + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60) : fmt::format("{}:{:02}", s / 60, s % 60);
}

std::string metrics_text(const MetricValues& values) {
  std::string out;
  for (const auto& [name, v] : values) out += fmt::format("{}{} {:.4f}", out.empty() ? "" : "  ", name, v);
  return out;
}

// Task::training_state for the progress line: "vq_restarts 42  " (whole numbers stay whole).
std::string state_text(const MetricValues& values) {
  std::string out;
  for (const auto& [name, v] : values) out += fmt::format("{} {:.6g}  ", name, v);
  return out;
}

}  // namespace

ProgressLog::ProgressLog(const RunFolder& folder, const Trainer& trainer)
    : folder_(folder),
      metrics_(folder.metrics_log(), folder.resume_point ? std::ios::app : std::ios::trunc),
      total_steps_(trainer.total_steps()),
      log_every_(folder.recipe.section("log").integer("every")) {
  if (!metrics_) fail("cannot write {}", folder.metrics_log().string());
  fmt::print("model: {} ({} parameters); {} steps of {} images; threads {}\n",
             folder.recipe.section("model").string("type"), trainer.model().parameter_count(), total_steps_,
             trainer.images_per_step(), kernels::num_threads());
  if (folder.resume_point) fmt::print("resumed at step {} of {}\n", trainer.steps_done(), total_steps_);
  std::fflush(stdout);
  start_ = interval_start_ = Clock::now();
}

void ProgressLog::step_done(const Trainer& trainer, const Trainer::StepResult& result) {
  interval_loss_ += result.loss, ++interval_steps_;
  const int64_t s = trainer.steps_done();
  if (s % log_every_ != 0 && s != total_steps_) return;

  const auto now = Clock::now();
  const double seconds = std::chrono::duration<double>(now - interval_start_).count();
  const double rate = double(interval_steps_) / std::max(seconds, 1e-9);
  const double images_per_s = rate * double(trainer.images_per_step());
  const double loss = interval_loss_ / double(interval_steps_);
  const MetricValues state = trainer.training_state();
  fmt::print("epoch {}  step {}/{}  loss {:.4f}  lr {:.3e}  {}{:.1f} it/s  {:.0f} img/s  ETA {}\n", result.epoch + 1, s,
             total_steps_, loss, result.lr, state_text(state), rate, images_per_s,
             duration(double(total_steps_ - s) / rate));
  std::fflush(stdout);
  JsonObject line;
  line.add("step", s)
      .add("epoch", result.epoch)
      .add("split", "train")
      .add("loss", loss)
      .add("lr", result.lr)
      .add("grad_norm", result.grad_norm)
      .add("steps_per_s", rate)
      .add("images_per_s", images_per_s)
      .add("elapsed_s", std::chrono::duration<double>(now - start_).count());
  for (const auto& [name, v] : state) line.add(name, v);
  write(line.str());
  interval_start_ = Clock::now(), interval_steps_ = 0, interval_loss_ = 0;
}

void ProgressLog::evaluated(int64_t step, int64_t epoch, const MetricValues& values, bool is_best) {
  JsonObject line;
  line.add("step", step).add("epoch", epoch).add("split", "eval");
  for (const auto& [name, v] : values) line.add(name, v);
  write(line.str());
  fmt::print("eval  step {}/{}  {}{}\n", step, total_steps_, metrics_text(values), is_best ? "  (best so far)" : "");
  std::fflush(stdout);
}

void ProgressLog::finished() {
  const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
  fmt::print("done: {} steps in {}; checkpoints and metrics.jsonl in {}\n", total_steps_, duration(seconds),
             folder_.dir.string());
}

void ProgressLog::write(const std::string& json_line) {
  metrics_ << json_line << "\n";
  metrics_.flush();
}

}  // namespace tessera::train
