#pragma once
// A run's report: one self-contained HTML file to look at instead of metrics.jsonl — the resolved
// recipe and `tessera info`; curves of every training and evaluation value over steps; the samples
// of each evaluation; and what the model's capabilities allow looking into: a classifier's
// confusion matrix, a dual encoder's per-class zero-shot accuracy and image-text similarities, an
// image tower's attention rollout, a VQ codebook's usage and what its most used codes look like, a
// VLM's generations with their boxes drawn. `tessera report` writes it; the trainer refreshes it
// after each evaluation, so a run can be watched in a browser while it trains.
#include <cstdint>
#include <string>

namespace tessera::train {

struct ReportOptions {
  std::string out;                // "" = RUN_DIR/report.html
  std::string checkpoint;         // "" = RUN_DIR/last.h5 (the analyses are skipped when it is missing)
  int64_t analysis_images = 1000; // eval images the confusion matrix, zero-shot accuracy and code usage read
  int64_t shown_images = 6;       // images shown with attention maps, codes and generations
};

// Writes the report (atomically) and returns its path. Its sections (HTML ids): summary, recipe,
// training, evaluation, samples; then, by what the model can do: confusion (classifiers),
// zero_shot and similarity (dual encoders), attention (image towers: ViT, CLIP, SigLIP, VLM),
// codebook and codes (hard-token tokenizers), generated (VAEs: prior samples), generations
// (VLMs). An analysis that cannot be made (no eval set yet, no checkpoint yet) says why in the
// page; only a folder that is not a run is an error.
std::string write_run_report(const std::string& run_dir, const ReportOptions& options = {});

}  // namespace tessera::train
