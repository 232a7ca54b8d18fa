#!/usr/bin/env bash
# The checked builds, run by the README's second command (and so by CI) after the main suite:
#   1. build-asan/: clang with AddressSanitizer + UBSan (and libFuzzer's coverage): the whole test
#      suite again, every `tessera` the tests start included;
#   2. build-tsan/: clang with ThreadSanitizer over the threaded kernels and the data loader
#      (LLVM's OpenMP with Archer, so that OpenMP's own synchronisation is seen);
#   3. the libFuzzer harnesses of tests/fuzz, each for TESSERA_FUZZ_SECONDS (default 30) from its
#      seed corpus; an input that crashes is kept as build-asan/fuzz/crash-* and fails the run.
# Any sanitizer report aborts the program, which fails its test. Needs setup.sh's packages.
#   bash tests/sanitize.sh [canaries] [asan] [tsan] [fuzz]     (no argument: all four, in order)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${TESSERA_FUZZ_SECONDS:-30}
stages=${*:-canaries asan tsan fuzz}
want() { [[ " $stages " == *" $1 "* ]]; }
export CC=clang CXX=clang++
configure() {  # folder, cmake options...
  local dir=$1
  shift
  mkdir -p "$dir"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" > "$dir/configure.log" 2>&1 || { cat "$dir/configure.log"; exit 1; }
}
# Reports abort (so a test that expects exit status 1 sees a signal), and Boost.Test leaves the
# signal alone (its handler would allocate, which ThreadSanitizer cannot report from). Leaks count
# (tests/sanitize.supp). ThreadSanitizer sees OpenMP's synchronisation through LLVM's Archer tool
# and ignores the insides of uninstrumented libraries (libomp's own locks, OpenBLAS).
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:strict_string_checks=1:check_initialization_order=1
export UBSAN_OPTIONS=abort_on_error=1:print_stacktrace=1
export LSAN_OPTIONS=suppressions=$PWD/tests/sanitize.supp:print_suppressions=0
export BOOST_TEST_CATCH_SYSTEM_ERRORS=no
archer=$(ls /usr/lib/llvm-*/lib/libarcher.so | tail -n 1)
tsan_options=abort_on_error=1:halt_on_error=1:second_deadlock_stack=1:ignore_noninstrumented_modules=1

if want canaries; then
echo "== each sanitizer catches its canary (tests/sanitizer_canaries.cpp)"
canary=$(mktemp -d)
trap 'rm -rf "$canary"' EXIT
clang++ -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all tests/sanitizer_canaries.cpp -o "$canary/asan"
clang++ -g -O1 -fopenmp -fsanitize=thread tests/sanitizer_canaries.cpp -o "$canary/tsan"
"$canary/asan" check-asan
OMP_TOOL_LIBRARIES=$archer TSAN_OPTIONS=$tsan_options "$canary/tsan" check-tsan
fi

# build-asan/ also holds the fuzzers.
if want asan || want fuzz; then
  configure build-asan -DTESSERA_SANITIZE=address,undefined -DTESSERA_FUZZ=ON
  cmake --build build-asan -j "$(nproc)" 2>&1 | tail -n 2
fi
if want asan; then
echo "== AddressSanitizer + UBSan: the test suite (build-asan/)"
ln -sfn ../build/interop-venv build-asan/interop-venv  # the test venv setup.sh made
ctest --test-dir build-asan --output-on-failure
fi

if want tsan; then
echo "== ThreadSanitizer: kernels and data loader (build-tsan/)"
configure build-tsan -DTESSERA_SANITIZE=thread
cmake --build build-tsan -j "$(nproc)" --target test_kernels test_data tessera 2>&1 | tail -n 2
OMP_TOOL_LIBRARIES=$archer TSAN_OPTIONS=$tsan_options ctest --test-dir build-tsan --output-on-failure -R '^(kernels|data)$'
fi

if want fuzz; then
echo "== libFuzzer: ${seconds}s per harness (build-asan/fuzz/)"
# The readers of HDF5 files (dataset, checkpoint, tokens) go through libhdf5 1.10, which itself
# crashes and hangs on some damaged files. Their fuzzers run in fork mode, going on after a crash,
# and every input that crashed, hung or ran out of memory is then judged by tests/fuzz/triage.sh: a fault in
# Tessera's code fails the run; one inside libhdf5, in memory of its own, is listed (docs/RELIABILITY.md).
mkdir -p build-asan/fuzz
hdf5_findings=0
for harness in build-asan/tests/fuzz/fuzz_*; do
  name=$(basename "$harness")
  name=${name#fuzz_}
  corpus=build-asan/fuzz/corpus-$name  # grows across runs; the seeds stay as committed
  mkdir -p "$corpus"
  seeds=("tests/fuzz/corpus/$name")
  [[ $name == recipe ]] && seeds+=(recipes)  # the shipped recipes are seeds too
  options=(-max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1
           -artifact_prefix=build-asan/fuzz/"$name"-)
  case $name in
    dataset | checkpoint | tokens)
      # Leaks are not judged here: libhdf5 loses memory on its own error paths (the suite checks ours).
      rm -f build-asan/fuzz/"$name"-crash-* build-asan/fuzz/"$name"-timeout-* build-asan/fuzz/"$name"-oom-*
      "$harness" "${options[@]}" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -detect_leaks=0 \
        "$corpus" "${seeds[@]}" > "build-asan/fuzz/$name.log" 2>&1 || true
      grep -q 'INFO: exiting' "build-asan/fuzz/$name.log" || { tail -n 40 "build-asan/fuzz/$name.log"; exit 1; }
      for found in build-asan/fuzz/"$name"-crash-* build-asan/fuzz/"$name"-timeout-* build-asan/fuzz/"$name"-oom-*; do
        [[ -e $found ]] || continue
        status=0
        verdict=$(tests/fuzz/triage.sh "$harness" "$found") || status=$?
        case $status in
          0) hdf5_findings=$((hdf5_findings + 1))
             echo "fuzz_$name: inside libhdf5, $(basename "$found"): ${verdict#hdf5: }" | cut -c1-200 ;;
          2) echo "fuzz_$name: $verdict" ;;
          *) echo "$verdict"
             echo "fuzz_$name found a fault in Tessera: $found (reproduce: $harness $found)"
             exit 1 ;;
        esac
      done
      grep -E '^#[0-9]+: cov' "build-asan/fuzz/$name.log" | tail -n 1 | sed "s/^/fuzz_$name: /"
      ;;
    *)
      "$harness" "${options[@]}" "$corpus" "${seeds[@]}" > "build-asan/fuzz/$name.log" 2>&1 ||
        { tail -n 60 "build-asan/fuzz/$name.log"; echo "fuzz_$name found a failure (build-asan/fuzz/$name-*)"; exit 1; }
      grep -E '^stat::number_of_executed_units|^stat::new_units_added' "build-asan/fuzz/$name.log" |
        tr '\n' ' ' | sed "s/^/fuzz_$name: /; s/stat:://g"
      echo
      ;;
  esac
done
echo "fuzzers: no fault in Tessera (${hdf5_findings} inputs that crash or hang libhdf5 itself, listed above)"
fi
echo "checked builds ($stages): clean"
