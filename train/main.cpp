#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "data/hdf5_util.h"
#include "train/command.h"

namespace {

// OpenMP threads (ours and OpenBLAS's) that finish a parallel region spin, by default, waiting for
// the next one. Alone on the machine that costs nothing; beside another busy program they take
// its core from it and from each other, and a 2-thread ViT step fell from 2.2 to 0.7 steps/s
// (docs/PERFORMANCE.md). Passive waiting keeps 2.2 alone and gives 1.1 beside the neighbour.
// libgomp reads OMP_WAIT_POLICY when it is loaded, before main, hence the re-exec (same pid, so
// signals and mpirun are unaffected). A user's own OMP_WAIT_POLICY is left as it is.
void wait_passively(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: then run as we are
}

}  // namespace

// AddressSanitizer builds (tests/sanitize.sh) check for leaks at exit, except in the processes of
// an MPI job: Open MPI keeps its start-up allocations for good and unloads the components that
// made them before LeakSanitizer looks, so their leaks cannot be told from ours by name. The
// same code runs, with leak checking, in every one-process test.
#if defined(__SANITIZE_ADDRESS__)
#define TESSERA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TESSERA_ASAN 1
#endif
#endif
#ifdef TESSERA_ASAN
extern "C" int __lsan_is_turned_off() { return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr; }
#endif

int main(int argc, char** argv) {
  wait_passively(argv);
  tessera::data::h5::skip_library_teardown_at_exit();
  return tessera::cli::run_main(std::vector<std::string>(argv + 1, argv + argc));
}
