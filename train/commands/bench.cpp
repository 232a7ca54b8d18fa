// `tessera bench RECIPE [--steps N] [--warmup N] [--set ...] [--precision P] [--threads N] [--json]`:
// training speed.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>

#include "autograd/error.h"
#include "kernels/gemm.h"
#include "kernels/threads.h"
#include "train/command.h"
#include "train/json.h"
#include "train/process_group.h"
#include "train/trainer.h"

namespace tessera::cli {
namespace {

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

int bench(const std::vector<std::string>& args) {
  std::string path;
  std::vector<std::string> overrides;
  int64_t steps = 50, warmup = 5, threads = 0;
  bool json = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) fail("{} needs a value", a);
      return args[++i];
    };
    if (a == "--json") json = true;
    else if (a == "--steps") steps = train::parse_count(a, value(), 1);
    else if (a == "--warmup") warmup = train::parse_count(a, value(), 0);
    else if (a == "--threads") threads = train::parse_threads(a, value());
    else if (a == "--set") overrides.push_back(value());
    else if (a == "--precision") overrides.push_back("train.precision=" + value());
    else if (a.rfind("--", 0) == 0) fail("unknown option '{}' (see tessera bench --help)", a);
    else if (path.empty()) path = a;
    else fail("unexpected argument '{}'", a);
  }
  if (path.empty()) fail("give a recipe, e.g. tessera bench recipes/mlp_fmnist.yaml");
  train::Trainer trainer(train::Recipe::load(path, overrides), int(threads));
  for (int64_t i = 0; i < warmup; ++i) trainer.step();
  std::vector<double> seconds, exchange;
  for (int64_t i = 0; i < steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    exchange.push_back(trainer.step().exchange_seconds);
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  const double median = median_of(seconds), exchange_median = median_of(exchange);
  const train::ProcessGroup& group = train::ProcessGroup::world();
  if (!group.is_writer()) return 0;
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double steps_per_s = 1 / median, images_per_s = steps_per_s * double(trainer.images_per_step());
  const double peak_rss_mb = double(usage.ru_maxrss) / 1024.0;
  if (json) {
    fmt::print("{}\n", train::JsonObject()
                           .add("recipe", path)
                           .add("threads", kernels::num_threads())
                           .add("processes", group.size())
                           .add("precision", kernels::matmul_precision_name(kernels::matmul_precision()))
                           .add("steps", steps)
                           .add("images_per_step", trainer.images_per_step())
                           .add("steps_per_s", steps_per_s)
                           .add("images_per_s", images_per_s)
                           .add("median_step_ms", median * 1e3)
                           .add("median_exchange_ms", exchange_median * 1e3)
                           .add("peak_rss_mb", peak_rss_mb)
                           .str());
  } else {
    fmt::print("recipe        {} ({} threads, {} images per step)\n", path, kernels::num_threads(), trainer.images_per_step());
    if (group.size() > 1)
      fmt::print("processes     {} (median {:.2f} ms a step adding up gradients, waiting included)\n", group.size(),
                 exchange_median * 1e3);
    fmt::print("timed steps   {} after {} warm-up\nmedian step   {:.2f} ms\nsteps/s       {:.1f}\nimages/s      {:.0f}\n"
               "peak RSS      {:.0f} MB\n", steps, warmup, median * 1e3, steps_per_s, images_per_s, peak_rss_mb);
  }
  return 0;
}

int run_bench(const std::vector<std::string>& args) {
  return train::ProcessGroup::world().run("bench", [&] { return bench(args); });
}

const CommandRegistration registration{
    {"bench", "time training steps of a recipe",
     "usage: tessera bench RECIPE [--steps N] [--warmup N] [--set key=value ...] [--precision fp32|bf16]\n"
     "                     [--threads N] [--json]\n\n"
     "Builds the recipe's model, optimizer and data, runs --warmup steps (default 5), then times\n"
     "--steps steps (default 50) one by one and prints the median steps/s, images/s and the peak\n"
     "resident memory. Writes nothing. --precision P is --set train.precision=P.\n"
     "Under mpirun -np N (data-parallel), process 0 prints, with the median time spent adding up\n"
     "the processes' gradients; peak memory is process 0's.",
     run_bench}};

}  // namespace
}  // namespace tessera::cli
