#pragma once
// What a run reports as it goes: on the console, its opening lines, a progress line every
// log.every steps, an eval line per evaluation and a closing line; in metrics.jsonl, one JSON
// object per progress line ("split": "train", with the speed) and per evaluation ("split":
// "eval", metrics only, so two equal runs log equal eval lines).
#include <chrono>
#include <fstream>

#include "train/run/run_folder.h"
#include "train/trainer.h"

namespace tessera::train {

class ProgressLog {
  using Clock = std::chrono::steady_clock;

 public:
  // Opens metrics.jsonl (appending on resume) and prints the model, the steps and the threads.
  ProgressLog(const RunFolder& folder, const Trainer& trainer);

  // Counts a finished step; every log.every steps and at the last one, prints and logs the mean
  // loss and the speed since the previous line.
  void step_done(const Trainer& trainer, const Trainer::StepResult& result);
  void evaluated(int64_t step, int64_t epoch, const MetricValues& values, bool is_best);
  void finished();

  // While one lives, the clock of the speed stops: evaluation time is not training speed.
  class Paused {
   public:
    explicit Paused(ProgressLog& log) : log_(log), start_(Clock::now()) {}
    ~Paused() { log_.interval_start_ += Clock::now() - start_; }
    Paused(const Paused&) = delete;
    Paused& operator=(const Paused&) = delete;

   private:
    ProgressLog& log_;
    Clock::time_point start_;
  };

 private:
  void write(const std::string& json_line);

  const RunFolder& folder_;
  std::ofstream metrics_;
  int64_t total_steps_ = 0, log_every_ = 0;
  Clock::time_point start_, interval_start_;
  int64_t interval_steps_ = 0;
  double interval_loss_ = 0;
};

}  // namespace tessera::train
