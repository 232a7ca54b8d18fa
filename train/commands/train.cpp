// `tessera train RECIPE [--run-dir DIR] [--set key=value ...] [--threads N] [--overwrite]` and `--resume DIR`.
#include <csignal>

#include "autograd/error.h"
#include "train/command.h"
#include "train/experiment.h"
#include "train/run/run_training.h"

namespace tessera::cli {
namespace {

int run_train(const std::vector<std::string>& args) {
  train::RunOptions o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) fail("{} needs a value", a);
      return args[++i];
    };
    if (a == "--run-dir") o.run_dir = value();
    else if (a == "--set") o.overrides.push_back(value());
    else if (a.rfind("--set=", 0) == 0) o.overrides.push_back(a.substr(6));
    else if (a == "--threads") o.threads = train::parse_threads(a, value());
    else if (a == "--resume") o.resume_dir = value();
    else if (a == "--overwrite") o.overwrite = true;
    else if (a == "--debug-kill-after") o.debug_kill_after = train::parse_count(a, value(), 1);
    else if (a == "--debug-interrupt-after") o.debug_interrupt_after = train::parse_count(a, value(), 1);
    else if (a == "--debug-signal") {
      const std::string name = value();
      if (name == "INT") o.debug_signal = SIGINT;
      else if (name == "TERM") o.debug_signal = SIGTERM;
      else if (name == "HUP") o.debug_signal = SIGHUP;
      else fail("--debug-signal {}: give INT, TERM or HUP", name);
    }
    else if (a.rfind("--", 0) == 0) fail("unknown option '{}' (see tessera train --help)", a);
    else if (o.recipe_path.empty()) o.recipe_path = a;
    else fail("unexpected argument '{}' (one recipe per run)", a);
  }
  if (!o.resume_dir.empty() && !o.recipe_path.empty()) fail("give a recipe or --resume DIR, not both");
  if (!o.resume_dir.empty() && !o.run_dir.empty()) fail("--resume DIR already names the run folder; drop --run-dir");
  if (o.overwrite && !o.resume_dir.empty()) fail("--overwrite starts afresh and --resume continues: pick one");
  return train::run_training(o);
}

const CommandRegistration registration{
    {"train", "train a model from a YAML recipe (or resume a run)",
     "usage: tessera train RECIPE [--run-dir DIR] [--set key=value ...] [--threads N] [--overwrite]\n"
     "       tessera train --resume DIR [--set key=value ...] [--threads N]\n\n"
     "Validates the recipe (unknown keys, types and ranges are errors), prints the resolved recipe,\n"
     "and trains. The run folder (default runs/<recipe name>) receives recipe.yaml, metrics.jsonl\n"
     "(one JSON object per line: train and eval entries keyed by step), last.h5, best.h5 when\n"
     "checkpoint.best_metric is set, and step_NNNNNNN.h5 when checkpoint.keep > 0.\n\n"
     "  --set key=value   override any recipe key, e.g. --set optim.lr=3e-4 --set model.hidden=[512,256]\n"
     "  --run-dir DIR     where the run goes\n"
     "  --threads N       worker threads (overrides the recipe's threads and TESSERA_THREADS)\n"
     "  --overwrite       start afresh even if the run folder holds a run (its checkpoints go)\n"
     "  --resume DIR      continue DIR/last.h5 exactly where it stopped (model, optimizer, schedule,\n"
     "                    data position, random state); the result equals an uninterrupted run\n\n"
     "Ctrl-C once saves last.h5 and exits (status 130); twice stops at once. A NaN or infinite loss\n"
     "or gradient stops the run naming the step and keeps the last good checkpoint.\n\n"
     "Data-parallel: mpirun -np N tessera train RECIPE --threads T (Open MPI) trains on N processes;\n"
     "train.batch_size stays the step's batch, each process reads 1/N of it, and the result equals\n"
     "one process with --set train.accumulation=N bit for bit. Process 0 alone prints and writes.\n"
     "kill -USR1 <mpirun's pid> saves and stops all processes (mpirun's own Ctrl-C kills them).\n"
     "docs/SCALING.md has the details.",
     run_train}};

}  // namespace
}  // namespace tessera::cli
