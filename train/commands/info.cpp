// `tessera info`: what this build is and what it will run on this machine.
#include <fmt/format.h>

#include "kernels/bf16_gemm.h"
#include "kernels/cpu.h"
#include "kernels/gemm.h"
#include "kernels/threads.h"
#include "train/command.h"
#include "train/process_group.h"

#ifndef TESSERA_VERSION
#define TESSERA_VERSION "dev"
#endif
#ifndef TESSERA_BUILD_TYPE
#define TESSERA_BUILD_TYPE "unknown"
#endif

namespace tessera::cli {
namespace {

int run_info(const std::vector<std::string>& args) {
  if (!args.empty()) {
    fmt::print(stderr, "tessera info: takes no arguments (got '{}')\n", args[0]);
    return 2;
  }
  using namespace kernels;
  const CpuFeatures& f = cpu_features();
  auto yes = [](bool b) { return b ? "yes" : "no"; };
  fmt::print("tessera {}\n", TESSERA_VERSION);
  fmt::print("build type      {}\n", TESSERA_BUILD_TYPE);
  fmt::print("compiler        {}\n", __VERSION__);
  fmt::print("cpu             {} ({})\n", f.brand.empty() ? "unknown" : f.brand, f.vendor);
  fmt::print("cpu features    avx2={} fma={} avx512f={} avx512bw={} avx512vl={} avx512dq={} avx512bf16={} "
             "amx-tile={} amx-bf16={}\n", yes(f.avx2), yes(f.fma), yes(f.avx512f), yes(f.avx512bw), yes(f.avx512vl),
             yes(f.avx512dq), yes(f.avx512bf16), yes(f.amx_tile), yes(f.amx_bf16));
  fmt::print("simd path       {} (best for this cpu: {}; TESSERA_SIMD overrides)\n", simd_path_name(simd_path()),
             simd_path_name(best_simd_path()));
  fmt::print("gemm            {}\n", gemm_backend_name());
  fmt::print("bf16 gemm       {} (best for this cpu: {}; TESSERA_BF16=amx|avx512bf16|convert overrides; used by "
             "train.precision: bf16 and --precision bf16)\n", bf16_path_name(bf16_path()),
             bf16_path_name(best_bf16_path()));
  fmt::print("threads         {} (TESSERA_THREADS or --threads overrides)\n", num_threads());
  fmt::print("mpi             {}\n", train::ProcessGroup::support());
  return 0;
}

const CommandRegistration registration{{"info", "print version, build, CPU features, SIMD path, BLAS and threads",
                                        "usage: tessera info\n\nPrints the version, build type, the CPU features "
                                        "seen, the SIMD path chosen, the GEMM in use, the bf16 GEMM path and the "
                                        "thread count.",
                                        run_info}};

}  // namespace
}  // namespace tessera::cli
