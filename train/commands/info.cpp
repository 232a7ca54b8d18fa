// `tessera info`: what this build is and what it will run on this machine.
#include <fmt/format.h>

#include "train/build_info.h"
#include "train/command.h"

namespace tessera::cli {
namespace {

int run_info(const std::vector<std::string>& args) {
  if (!args.empty()) {
    fmt::print(stderr, "tessera info: takes no arguments (got '{}')\n", args[0]);
    return 2;
  }
  fmt::print("{}", train::build_info_text());
  return 0;
}

const CommandRegistration registration{{"info", "print version, build, CPU features, SIMD path, BLAS and threads",
                                        "usage: tessera info\n\nPrints the version, build type, the CPU features "
                                        "seen, the SIMD path chosen, the GEMM in use, the bf16 GEMM path and the "
                                        "thread count.",
                                        run_info}};

}  // namespace
}  // namespace tessera::cli
