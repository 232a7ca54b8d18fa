// Shows that the checked builds catch what they are there for (a sanitizer that reports nothing
// proves nothing): one bug of each kind, each run in a process of its own, and a check that the
// process died with the sanitizer's report. tests/sanitize.sh compiles this file with the flags
// and runs it with the options of the builds it vouches for:
//   canaries check-asan   heap overflow, leak, signed overflow must be reported (ASan, LSan, UBSan)
//   canaries check-tsan   an OpenMP race must be reported (TSan with Archer)
// Exit status 0 when every bug was caught, 1 otherwise.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

// The bugs. `n` hides sizes and values from the optimiser.
int heap_overflow(volatile int n) {
  int* a = new int[n];
  const int past = a[n];
  delete[] a;
  return past;
}

int leak(volatile int n) {
  void* volatile lost = std::malloc(size_t(n) * 100);
  lost = nullptr;
  return lost != nullptr;
}

int signed_overflow(volatile int n) {
  int big = 2147483600;
  return big + n * 10;
}

int race(volatile int n) {
  long sum = 0;
#pragma omp parallel for num_threads(2)
  for (int i = 0; i < 100000; ++i) sum += i % n;
  std::printf("%ld\n", sum);
  return 0;
}

struct Canary {
  const char* bug;
  const char* report;  // what the sanitizer's report must say
};

// This program's own path (popen's shell would be /proc/self/exe).
std::string self() {
  char path[4096];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  return n > 0 ? std::string(path, size_t(n)) : "";
}

// Runs this program on `bug` and says whether it died with `report` in its output.
bool caught(const Canary& c) {
  FILE* child = popen(("'" + self() + "' " + c.bug + " 2>&1").c_str(), "r");
  if (!child) return false;
  std::string output;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, child)) output += buffer;
  const int status = pclose(child);
  const bool failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const bool reported = output.find(c.report) != std::string::npos;
  std::printf("%s: %s\n", c.bug, failed && reported ? "caught" : "MISSED");
  if (!(failed && reported)) std::printf("--- its output ---\n%s---\n", output.c_str());
  return failed && reported;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string what = argc > 1 ? argv[1] : "";
  const int n = argc + 6;  // 8 when run on a bug
  if (what == "heap") return heap_overflow(n);
  if (what == "leak") return leak(n);
  if (what == "shift") return signed_overflow(n);
  if (what == "race") return race(n);
  std::vector<Canary> canaries;
  if (what == "check-asan")
    canaries = {{"heap", "heap-buffer-overflow"}, {"leak", "detected memory leaks"}, {"shift", "signed integer overflow"}};
  else if (what == "check-tsan")
    canaries = {{"race", "data race"}};
  else {
    std::fprintf(stderr, "usage: canaries check-asan|check-tsan (or a bug: heap|leak|shift|race)\n");
    return 2;
  }
  // The assertion of this program: every canary is caught, or the checked build is not checking.
  int missed = 0;
  for (const Canary& c : canaries) missed += caught(c) ? 0 : 1;
  if (missed > 0) std::fprintf(stderr, "assertion failed: %d of %zu canaries missed by the sanitizer\n", missed, canaries.size());
  return missed == 0 ? 0 : 1;
}
