#pragma once
// Ctrl-C during a run: the first one asks the run to stop after the current step (it saves
// last.h5 and exits with 130), a second one stops the process at once.
#include <csignal>

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
  struct sigaction previous_ {};
};

}  // namespace tessera::train
