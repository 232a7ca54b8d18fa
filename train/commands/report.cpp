// `tessera report RUN_DIR [--out FILE]`: the run as one self-contained HTML page (train/report/).
#include <fmt/format.h>

#include "autograd/error.h"
#include "kernels/threads.h"
#include "train/command.h"
#include "train/experiment.h"
#include "train/report/run_report.h"

namespace tessera::cli {
namespace {

int run_report(const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  train::ReportOptions options;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--out" || a == "--checkpoint" || a == "--images" || a == "--threads") {
      if (i + 1 >= args.size()) fail("{} needs a value", a);
      const std::string& v = args[++i];
      if (a == "--out") options.out = v;
      else if (a == "--checkpoint") options.checkpoint = v;
      else if (a == "--images") options.analysis_images = train::parse_count(a, v, 1);
      else kernels::set_num_threads(train::parse_threads(a, v));
    } else if (a.rfind("--", 0) == 0) {
      fail("unknown option '{}' (see tessera report --help)", a);
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 1) fail("give one run folder, e.g. tessera report runs/vit_fmnist");
  const std::string path = train::write_run_report(positional[0], options);
  fmt::print("report written to {} (one self-contained HTML file: open it in a browser)\n", path);
  return 0;
}

const CommandRegistration registration{
    {"report", "write a run's report: one self-contained HTML page of its curves, samples and analyses",
     "usage: tessera report RUN_DIR [--out FILE.html] [--checkpoint CKPT] [--images N] [--threads N]\n\n"
     "Writes RUN_DIR/report.html (or FILE.html): the resolved recipe and `tessera info`; curves of\n"
     "every training value (loss, learning rate, gradient norm, speed) and every evaluation metric over\n"
     "steps; the run's sample images; and, from the checkpoint (RUN_DIR/last.h5 unless --checkpoint)\n"
     "on the recipe's data.eval, what the model allows looking into: a classifier's confusion matrix,\n"
     "a dual encoder's per-class zero-shot accuracy and image-text similarities, an image tower's\n"
     "attention rollout, a VQ codebook's usage and the image cells of its most used codes, a VLM's\n"
     "generations with boxes drawn. --images N: eval images the analyses read (default 1000).\n"
     "Images and charts are inline: the file opens offline. The trainer refreshes it after each\n"
     "evaluation (log.report: false turns that off).",
     run_report}};

}  // namespace
}  // namespace tessera::cli
