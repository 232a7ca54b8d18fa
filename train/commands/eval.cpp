// `tessera eval CKPT [--data FILE] [--json]`: the recipe's metrics of a checkpoint.
#include <fmt/format.h>

#include <algorithm>

#include "autograd/error.h"
#include "train/command.h"
#include "train/experiment.h"
#include "train/json.h"
#include "train/process_group.h"
#include "train/trained_model.h"
#include "kernels/threads.h"

namespace tessera::cli {
namespace {

int eval(const std::vector<std::string>& args) {
  std::string path, data_path;
  bool json = false;
  int64_t threads = 0, max_batches = 0;
  std::vector<std::string> overrides;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--json") json = true;
    else if (a == "--data" || a == "--threads" || a == "--max-batches" || a == "--precision" || a == "--set") {
      if (i + 1 >= args.size()) fail("{} needs a value", a);
      if (a == "--data") data_path = args[++i];
      else if (a == "--set") overrides.push_back(args[++i]);
      else if (a == "--precision") train::set_precision(a, args[++i]);
      else if (a == "--threads") threads = train::parse_threads(a, args[++i]);
      else max_batches = train::parse_count(a, args[++i], 1);
    } else if (a.rfind("--", 0) == 0) fail("unknown option '{}' (see tessera eval --help)", a);
    else if (path.empty()) path = a;
    else fail("unexpected argument '{}'", a);
  }
  if (path.empty()) fail("give a checkpoint, e.g. tessera eval runs/mlp_fmnist/last.h5");
  if (threads > 0) kernels::set_num_threads(int(threads));

  if (data_path.empty()) data_path = train::TrainedModel::stored_recipe(path).section("data").string("eval");
  if (data_path.empty()) fail("the recipe in {} has no data.eval; give --data FILE", path);
  std::shared_ptr<data::Dataset> dataset = data::Dataset::open(data_path, int64_t(1) << 30, /*clips=*/true);
  const train::TrainedModel model = train::TrainedModel::load(path, &dataset->info(), overrides);
  const train::Recipe& recipe = model.recipe();
  std::unique_ptr<train::Task> task = train::build_task(recipe);
  const train::ProcessGroup& group = train::ProcessGroup::world();
  const train::MetricValues values =
      train::evaluate(model.module(), *task, train::metric_names(recipe, *task), dataset, recipe, max_batches, &group);
  if (!group.is_writer()) return 0;

  if (json) {
    train::JsonObject out;
    for (const auto& [name, v] : values) out.add(name, v);
    fmt::print("{}\n", out.str());
  } else {
    size_t width = 10;  // "checkpoint", or the longest metric name
    for (const auto& [name, v] : values) width = std::max(width, name.size());
    fmt::print("{:<{}} {} (step {}{})\n{:<{}} {} ({} images)\n", "checkpoint", width, path, model.step(),
               model.uses_ema() ? ", EMA weights" : "", "data", width, data_path,
               max_batches > 0 ? std::min(dataset->size(), max_batches * recipe.section("eval").integer("batch_size"))
                               : dataset->size());
    for (const auto& [name, v] : values) fmt::print("{:<{}} {:.6g}\n", name, width, v);
  }
  return 0;
}

int run_eval(const std::vector<std::string>& args) {
  return train::ProcessGroup::world().run("eval", [&] { return eval(args); });
}

const CommandRegistration registration{
    {"eval", "evaluate a checkpoint on a data set",
     "usage: tessera eval CKPT [--data FILE] [--json] [--threads N] [--max-batches N] [--precision fp32|bf16]\n"
     "                    [--set key=value ...]\n\n"
     "Rebuilds the model from the recipe stored in CKPT, loads its weights (the EMA weights when the\n"
     "run kept them and eval.use_ema is on) and prints the recipe's metrics over FILE (default: the\n"
     "recipe's data.eval) as a table, or with --json as one flat JSON object keyed by metric name,\n"
     "e.g. {\"accuracy\": 0.87, \"loss\": 0.36}. --max-batches N evaluates only the first N batches of\n"
     "eval.batch_size images (what a training run's eval.max_batches does; generation-based metrics\n"
     "of a vision-language model take a while over a whole test set).\n"
     "--precision fp32|bf16 runs the matrix products (linear layers, convolutions, attention) in fp32\n"
     "(default) or with bf16 operands and fp32 sums; the checkpoint is fp32 either way.\n"
     "--set key=value changes the stored recipe first, for settings that leave the weights as they\n"
     "are: e.g. --set model.sampling.guidance=2 scores a diffusion model at another guidance,\n"
     "--set eval.metrics=[loss] picks metrics.\n"
     "Under mpirun -np N the processes share the batches out (process 0 prints); the figures are\n"
     "those of one process.",
     run_eval}};

}  // namespace
}  // namespace tessera::cli
