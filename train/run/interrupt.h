#pragma once
// Ctrl-C during a run: the first one asks the run to stop after the current step (it saves
// last.h5 and exits with 130), a second one stops the process at once. SIGTERM (what `kill`, a
// batch scheduler or a shutdown sends) and SIGHUP (a closed terminal) ask the same, so that no
// steps are lost. SIGUSR1 too: it is the signal mpirun passes on to every process (its own Ctrl-C
// kills the job), so `kill -USR1 <mpirun's pid>` saves and stops a data-parallel run.
#include <csignal>
#include <iterator>

namespace tessera::train {

// Installs the Ctrl-C handler for its lifetime and restores the previous one after.
class InterruptScope {
 public:
  InterruptScope();
  ~InterruptScope();
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

  bool requested() const;

 private:
  struct sigaction previous_[4] {};  // SIGINT, SIGTERM, SIGHUP, SIGUSR1
};

}  // namespace tessera::train
