// One bug of each kind the checked builds are there to catch, so that tests/sanitize.sh can show
// that each sanitizer, as it is configured there, does catch it (a sanitizer that reports nothing
// proves nothing). Not part of any build: sanitize.sh compiles it with the flags under test.
//   canary heap   reads past the end of a heap block        (AddressSanitizer)
//   canary leak   loses a heap block                        (LeakSanitizer)
//   canary shift  overflows a signed int                     (UndefinedBehaviorSanitizer)
//   canary race   two OpenMP threads add to one variable    (ThreadSanitizer with Archer)
#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
  const char* bug = argc > 1 ? argv[1] : "";
  volatile int n = argc + 7;  // sizes and values the optimiser cannot see through
  if (std::strcmp(bug, "heap") == 0) {
    int* a = new int[n];
    const int past = a[n];
    delete[] a;
    return past;
  }
  if (std::strcmp(bug, "leak") == 0) {
    void* volatile lost = std::malloc(size_t(n) * 100);
    lost = nullptr;
    return lost != nullptr;
  }
  if (std::strcmp(bug, "shift") == 0) {
    int big = 2147483600;
    return big + n * 10;
  }
  if (std::strcmp(bug, "race") == 0) {
    long sum = 0;
#pragma omp parallel for num_threads(2)
    for (int i = 0; i < 100000; ++i) sum += i % n;
    std::printf("%ld\n", sum);
    return 0;
  }
  std::fprintf(stderr, "usage: canary heap|leak|shift|race\n");
  return 2;
}
