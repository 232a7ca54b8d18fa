#include "train/run/interrupt.h"

namespace tessera::train {
namespace {

volatile std::sig_atomic_t interrupted = 0;

void on_interrupt(int) {
  interrupted = 1;
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C stops at once
}

}  // namespace

InterruptScope::InterruptScope() {
  interrupted = 0;
  struct sigaction action {};
  action.sa_handler = on_interrupt;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &previous_);
  sigaction(SIGUSR1, &action, &previous_usr1_);
}

InterruptScope::~InterruptScope() {
  sigaction(SIGINT, &previous_, nullptr);
  sigaction(SIGUSR1, &previous_usr1_, nullptr);
}

bool InterruptScope::requested() const { return interrupted != 0; }

}  // namespace tessera::train
