#!/usr/bin/env bash
# Says whose bug an input that crashed, hung or ran out of memory in a harness is:
#   triage.sh HARNESS INPUT
#   prints "hdf5: <summary>"   the fault lies inside libhdf5 reading a damaged file, in memory of its
#                              own (Debian's libhdf5 1.10 is not hardened against damaged files,
#                              and Tessera cannot make it so);
#   prints "ours: <summary>"   anything else: a fault in Tessera's code, or in memory Tessera gave
#                              to HDF5 (a buffer too small);
#   prints "gone: ..."         the input runs cleanly now (libFuzzer's fork mode also writes the
#                              input a job was on when it stopped the job at its time limit).
# Exit status 0 for hdf5, 1 for ours, 2 for gone.
set -uo pipefail
harness=$1 input=$2
# A hang is reported after 10 s with the stack it was in (libFuzzer's -timeout).
report=$(ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:symbolize=1 UBSAN_OPTIONS=print_stacktrace=1 \
  timeout -s KILL 120 "$harness" -timeout=10 "$input" 2>&1)
summary=$(grep -m1 -E '^SUMMARY:|ERROR: libFuzzer' <<< "$report") || {
  echo "gone: $(basename "$input") runs cleanly ($(grep -m1 -o 'Executed .*' <<< "$report"))"
  exit 2
}
# The first frame of the faulting stack that is Tessera's or a library's, skipping the frames of
# the sanitizers and libFuzzer (interceptors such as malloc and memcpy, the alarm handler) and of
# the C and C++ runtimes.
frame=$(awk '/^ *#[0-9]+ 0x/ {
  ours = ($0 ~ /tessera|LLVMFuzzerTestOneInput/)
  library = ($0 ~ /\((\/usr)?\/lib\//)
  if (library && $0 ~ /libc\.so|libstdc\+\+|libgcc_s/) next
  if (!library && !ours) next
  print; exit }' <<< "$report")
# Where the bad memory came from (heap errors): allocated by Tessera's code, or by HDF5's?
allocated=$(awk '/allocated by thread/ { on = 1; next } on && /^ *#[0-9]+/ { print } on && /^$/ { exit }' <<< "$report")
if [[ $frame == *libhdf5* ]] && ! grep -q 'tessera::' <<< "$allocated"; then
  where=$(sed -E 's/.* in ([^ (]+).*/\1/; s/.*\((\S+)\).*/\1/' <<< "$frame")
  echo "hdf5: $summary, in $where"
  exit 0
fi
echo "ours: $summary"
echo "$report" | grep -E '^ *#[0-9]+ ' | head -n 12
exit 1
