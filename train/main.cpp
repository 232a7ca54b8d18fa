#include <link.h>
#include <signal.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
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

// libhdf5 1.10 (Debian 12's) can itself fault on a damaged file (tests/fuzz finds such files in
// seconds; docs/RELIABILITY.md). When a segmentation fault or bus error happens inside libhdf5's
// code, say which file Tessera was reading and exit with status 1, instead of a bare "Segmentation
// fault"; a fault anywhere else takes its normal course (a core dump to debug). Not in sanitizer
// builds, whose own report is the point.
#ifndef TESSERA_SANITIZED
struct CodeRange {
  uintptr_t begin = 0, end = 0;
  bool holds(uintptr_t address) const { return address >= begin && address < end; }
};
CodeRange hdf5_code, libc_code;

void write_text(const char* text) {
  for (size_t left = std::strlen(text); left > 0;) {
    const ssize_t n = write(STDERR_FILENO, text, left);
    if (n <= 0) return;
    text += n, left -= size_t(n);
  }
}

void on_fault(int signal_number, siginfo_t*, void* context) {
#if defined(__x86_64__)
  const mcontext_t& registers = static_cast<ucontext_t*>(context)->uc_mcontext;
  const auto pc = uintptr_t(registers.gregs[REG_RIP]);
  // In libhdf5, or in a C library routine such as memcpy that libhdf5 called: those are leaf
  // functions, so the return address is on top of the stack.
  const bool in_hdf5 = hdf5_code.holds(pc) ||
                       (libc_code.holds(pc) && hdf5_code.holds(*reinterpret_cast<const uintptr_t*>(registers.gregs[REG_RSP])));
  if (in_hdf5) {
    write_text("tessera: error: libhdf5 crashed (");
    write_text(signal_number == SIGBUS ? "bus error" : "segmentation fault");
    write_text(") reading HDF5 data; the file it was reading, most recently opened: '");
    write_text(tessera::data::h5::last_file_opened());
    write_text("', is damaged in a way libhdf5 does not detect (files Tessera writes carry checksums)\n");
    _exit(1);
  }
#else
  (void)context;
#endif
  signal(signal_number, SIG_DFL);  // returning re-runs the faulting instruction: the usual crash
}

void report_hdf5_faults() {
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void*) {
        CodeRange* range = !info->dlpi_name                          ? nullptr
                           : std::strstr(info->dlpi_name, "libhdf5")  ? &hdf5_code
                           : std::strstr(info->dlpi_name, "/libc.so") ? &libc_code
                                                                      : nullptr;
        for (int i = 0; range && i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& segment = info->dlpi_phdr[i];
          if (segment.p_type != PT_LOAD || !(segment.p_flags & PF_X)) continue;
          range->begin = info->dlpi_addr + segment.p_vaddr;
          range->end = range->begin + segment.p_memsz;
        }
        return 0;
      },
      nullptr);
  if (hdf5_code.end == 0) return;
  static char alternate_stack[1 << 16];  // a fault from a stack overflow needs another stack
  stack_t stack{};
  stack.ss_sp = alternate_stack;
  stack.ss_size = sizeof alternate_stack;
  sigaltstack(&stack, nullptr);
  struct sigaction action {};
  action.sa_sigaction = on_fault;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigaction(SIGSEGV, &action, nullptr);
  sigaction(SIGBUS, &action, nullptr);
}
#endif

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
#ifndef TESSERA_SANITIZED
  report_hdf5_faults();
#endif
  return tessera::cli::run_main(std::vector<std::string>(argv + 1, argv + argc));
}
