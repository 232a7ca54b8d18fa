#!/usr/bin/env bash
# Do two builds give the same results? Trains the vit, vqvae and clip recipes on short budgets
# with each `tessera` binary (same seed, same 2 threads) and compares their eval metrics and every
# logged training loss, learning rate and gradient norm. Used to show a refactor changes nothing.
#   usage: bench/same_results.sh OLD_TESSERA NEW_TESSERA FMNIST_DIR [OUT_DIR]
set -euo pipefail
old=$1 new=$2 data=$(realpath "$3") out=${4:-/tmp/tessera_same_results}
recipes=$(realpath "$(dirname "$0")/../recipes")
D="--set data.train=$data/train.h5 --set data.eval=$data/test.h5 --threads 2 --overwrite"
run() {  # BINARY DIR
  mkdir -p "$2" && cd "$2"
  "$1" train "$recipes/vit_fmnist.yaml" $D --set train.epochs=0 --set train.steps=60 --set schedule.warmup_steps=10 \
    --set eval.every=0 --set checkpoint.every=0 --set log.every=20 --run-dir vit > vit.log
  "$1" train "$recipes/vqvae_fmnist.yaml" $D --set train.epochs=0 --set train.steps=100 --set eval.every=0 \
    --set checkpoint.every=0 --set log.every=20 --run-dir vqvae > vqvae.log
  "$1" train "$recipes/clip_fmnist.yaml" $D --set train.steps=20 --set schedule.warmup_steps=5 --set log.every=5 \
    --run-dir clip > clip.log
  for r in vit vqvae clip; do
    "$1" eval "$r/last.h5" --json --threads 2
    grep '"split": "train"' "$r/metrics.jsonl" | sed -E 's/"(steps_per_s|images_per_s|elapsed_s)": [0-9.e+-]+,? *//g'
  done > results.txt
}
(run "$old" "$out/old") && (run "$new" "$out/new")
if diff "$out/old/results.txt" "$out/new/results.txt"; then
  echo "same results: $(grep -c . "$out/new/results.txt") lines (3 eval, the rest training log entries)"
else
  echo "results differ"; exit 1
fi
