#pragma once
// Checkpoints (HDF5), readable with h5py:
//   params/<dotted name>        one dataset per model tensor (parameters and buffers)
//   ema/<dotted name>           the EMA weights, when train.ema_decay > 0
//   optim/step                  the optimizer's step count
//   optim/<buffer>/<name>       its per-parameter buffers (exp_avg/layers.0.weight, ...)
//   meta (group attributes)     format_version, step, epoch, loader_epoch, loader_position,
//                               loader_seed, rng_seed, rng_offset, best_value, recipe (the full
//                               resolved YAML), recipe_name, input_shape [C,H,W], num_classes
// save_checkpoint writes a temporary file next to `path`, flushes and fsyncs it, then renames it
// into place: a crash at any moment leaves either the old file or the new one, never a broken one.
#include <cstdint>
#include <map>
#include <string>

#include "autograd/tensor.h"

namespace tessera::train {

constexpr int64_t kCheckpointFormatVersion = 1;

struct CheckpointMeta {
  int64_t format_version = kCheckpointFormatVersion;
  int64_t step = 0;   // optimizer steps done
  int64_t epoch = 0;  // of the training loader's next batch
  int64_t loader_epoch = 0, loader_position = 0;
  uint64_t loader_seed = 0;
  uint64_t rng_seed = 0, rng_offset = 0;  // the default generator
  double best_value = 0;                  // of checkpoint.best_metric so far (NaN = none yet)
  std::string recipe, recipe_name;
  std::vector<int64_t> input_shape;  // [C, H, W] the model was built for
  int64_t num_classes = 0;
};

struct Checkpoint {
  CheckpointMeta meta;
  std::map<std::string, Tensor> params, ema, optim;
};

void save_checkpoint(const std::string& path, const Checkpoint& checkpoint);
// Throws naming the file and what is wrong (missing, not HDF5, not a Tessera checkpoint, newer format).
Checkpoint load_checkpoint(const std::string& path);
// The meta attributes alone (the step, the stored recipe ...), without reading any tensor.
CheckpointMeta load_checkpoint_meta(const std::string& path);
// Throws naming the file, the group/tensor and the index of the first NaN or infinity among the
// floating-point tensors of params/ and ema/: weights like that would evaluate to nonsense and
// resume into more of it.
void require_finite_weights(const Checkpoint& checkpoint, const std::string& path);

}  // namespace tessera::train
