// The recipe schema: every key a recipe may hold, its type, default and range. Sections with a
// `type:` take that type's extra keys from its registry entry (train/registry.h).
#include "train/recipe.h"
#include "train/models/model_registry.h"
#include "train/optim.h"
#include "train/schedule.h"
#include "train/task.h"

namespace tessera::train {

const Field& recipe_schema() {
  static const Field schema = section("", "a recipe", {
      integer("seed", 0, "seeds model initialisation, data order and augmentation"),
      integer("threads", 0, "worker threads (0 = TESSERA_THREADS or every core)", 0, 1024),
      section("data", "data sets (HDF5 files, see docs/DESIGN.md)", {
          required_string("train", "path of the training set, e.g. datasets/fmnist/train.h5"),
          string("eval", "", "path of the evaluation set (\"\" = no evaluation)"),
          number_list("mean", "[0.5]", "per-channel mean subtracted from [0,1] pixels (one value = all channels)"),
          number_list("std", "[0.5]", "per-channel standard deviation pixels are divided by"),
          boolean("shuffle", true, "reshuffle the training set every epoch"),
          boolean("hflip", false, "augment: flip left-right with probability 1/2"),
          integer("crop_padding", 0, "augment: pad by this many pixels, then crop at random", 0, 64),
          integer("prefetch", 2, "batches prepared ahead on a background thread", 0, 64),
          string_list("caption_templates", "[]",
                      "captions \"a photo of a {}.\" filled with class names, one picked per sample, for a labelled set without captions"),
          string("captions", "random", "files with several captions per image (scenes): the one a training sample gets, "
                 "random (drawn per epoch) or first; evaluation always uses the first", {"random", "first"}),
          string_list("class_names", "[]",
                      "names of the classes in captions and zero-shot prompts, one per label ([] = the data set's class_names)"),
      }),
      typed_section("model", "the network; its keys depend on model.type", {
          required_string("type", "the model (see docs/EXTENDING.md for the list)"),
          string("from", "", "start from these weights: a Tessera checkpoint (.h5) or a .safetensors file under "
                 "Tessera, timm or open_clip names (tessera export writes them; docs/INTEROP.md); \"\" = random"),
      }, models),
      typed_section("loss", "the training objective", {
          string("type", "cross_entropy", "the loss"),
      }, losses),
      typed_section("optim", "the optimizer", {
          string("type", "adamw", "sgd, adam or adamw"),
          number("lr", 1e-3, "peak learning rate", 0),
          number("weight_decay", 0, "weight decay (decoupled for adamw, L2 for sgd and adam)", 0),
          boolean("no_decay_1d", true, "no weight decay on tensors of at most one dimension (biases, norms)"),
          string_list("no_decay_names", "[]", "no weight decay on parameters whose name contains one of these"),
          string_list("lr_scales", "[]",
                      "learning-rate multipliers, 'PATTERN=SCALE': parameters whose name contains PATTERN "
                      "get lr * SCALE (the first match counts), e.g. ['text.=3']"),
      }, optimizers),
      typed_section("schedule", "the learning-rate schedule, by optimizer step", {
          string("type", "cosine", "constant, cosine or linear"),
          integer("warmup_steps", 0, "linear warm-up steps from 0 to optim.lr"),
      }, schedules),
      section("train", "the loop", {
          integer("steps", 0, "optimizer steps (set this or epochs)"),
          number("epochs", 0, "passes over data.train (set this or steps)", 0),
          integer("batch_size", 128, "samples per micro-batch", 1),
          integer("accumulation", 1, "micro-batches the batch is cut into, each back-propagated on its own (less memory, same batch); with mpirun -np N, per process", 1),
          number("clip_grad_norm", 0, "clip the global gradient norm to this (0 = off)", 0),
          number("ema_decay", 0, "keep an exponential moving average of the weights with this decay (0 = off)", 0, 0.999999),
          string("precision", "fp32",
                 "fp32, or bf16: matrix products (linear layers, convolutions, attention) read bf16 operands and "
                 "sum in fp32; weights, gradients, optimizer state, norms, softmax and losses stay fp32"),
      }),
      section("eval", "evaluation on data.eval", {
          integer("every", 0, "evaluate every this many steps (0 = only at the end)"),
          integer("batch_size", 256, "samples per evaluation batch", 1),
          integer("max_batches", 0, "evaluate on at most this many batches (0 = all)"),
          string_list("metrics", "[]", "metrics to report ([] = the task's defaults)"),
          boolean("use_ema", true, "evaluate the EMA weights when train.ema_decay > 0"),
      }),
      section("checkpoint", "checkpoints in the run folder", {
          integer("every", 0, "write last.h5 every this many steps (0 = only at the end)"),
          integer("keep", 0, "also keep the N most recent step_NNNNNNN.h5 (0 = none)"),
          string("best_metric", "", "keep best.h5 by this eval metric (\"\" = off)"),
      }),
      section("log", "console and metrics.jsonl", {
          integer("every", 50, "print a progress line and log training metrics every this many steps", 1),
          boolean("report", true, "refresh RUN_DIR/report.html after each evaluation (tessera report)"),
      }),
  });
  return schema;
}

}  // namespace tessera::train
