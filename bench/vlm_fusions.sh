#!/bin/bash
# Issue 18's comparison (docs/RESULTS.md, "The three fusions"): the vision-language model reading
# the image each way — none (blind), prefix, dual_token, cross_attention on the frozen blind LM —
# at one budget and seed, on single scenes and on 8-frame clips; then each one's steps/s and peak
# memory by `tessera bench`. Needs datasets/scenes, datasets/clips8 (data import scenes --frames 8
# --train 16000 --test 2000) and a conv-stem stage-1 run (TOWER, default runs/siglip_scenes_conv).
# Usage: bench/vlm_fusions.sh [single|clips|bench]...   (all three when none is named)
set -euo pipefail
cd "$(dirname "$0")/.."
T=${TESSERA:-build/tessera}
OUT=${OUT:-runs/fusion}
TOWER=${TOWER:-runs/siglip_scenes_conv/last.h5}
METRICS='[caption_cider, caption_bleu4, vqa_accuracy, vqa_accuracy_count, vqa_accuracy_existence, vqa_accuracy_place, vqa_accuracy_size, vqa_accuracy_frame, vqa_accuracy_total, count_accuracy, detection_map50, detection_map, detection_parse_failures, loss]'
BUDGET=(--set train.steps=500 --set schedule.warmup_steps=50 --set eval.every=500 --set checkpoint.every=500
        --set seed=0 --threads 2)
SINGLE=(--set eval.max_batches=5)
CLIPS=(--set data.train=datasets/clips8/train.h5 --set data.eval=datasets/clips8/test.h5 --set model.frames=8
       --set train.batch_size=32 --set eval.max_batches=3 --set "eval.metrics=$METRICS")
WITH_TOWER=(--set model.image.patch_stem=conv --set model.image_encoder.from=$TOWER)
mkdir -p "$OUT"

runs() {  # $1: single|clips
  local data=("${SINGLE[@]}") set=$1
  [ "$set" = clips ] && data=("${CLIPS[@]}")
  $T train recipes/text_lm_scenes.yaml --run-dir "$OUT/${set}_none" "${BUDGET[@]}" "${data[@]}" --overwrite
  $T train recipes/paligemma_scenes.yaml --run-dir "$OUT/${set}_prefix" "${BUDGET[@]}" "${data[@]}" "${WITH_TOWER[@]}" --overwrite
  $T train recipes/llama_vid_scenes.yaml --run-dir "$OUT/${set}_dual" "${BUDGET[@]}" "${data[@]}" "${WITH_TOWER[@]}" --overwrite
  $T train recipes/llama_xattn_scenes.yaml --run-dir "$OUT/${set}_xattn" "${BUDGET[@]}" "${data[@]}" "${WITH_TOWER[@]}" \
      --set model.lm.from="$OUT/${set}_none/last.h5" --overwrite
}

speeds() {  # random weights: speed does not depend on them
  local tower=(--set model.image.patch_stem=conv --set 'model.image_encoder.from=""')
  for set in single clips; do
    local data=(); [ $set = clips ] && data=("${CLIPS[@]}")
    for r in text_lm_scenes paligemma_scenes llama_vid_scenes llama_xattn_scenes; do
      local t=("${tower[@]}") lm=()
      [ $r = text_lm_scenes ] && t=()
      [ $r = llama_xattn_scenes ] && lm=(--set 'model.lm.from=""')
      echo "== $set $r"
      $T bench recipes/$r.yaml --steps 12 --warmup 3 --threads 2 --json "${t[@]}" "${lm[@]}" "${data[@]}" 2>&1 | tail -1
    done
  done
}

for what in "${@:-single clips bench}"; do
  for w in $what; do
    case $w in
      single|clips) runs "$w" ;;
      bench) speeds ;;
      *) echo "unknown part '$w' (single, clips, bench)" >&2; exit 2 ;;
    esac
  done
done
