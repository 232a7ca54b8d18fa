#include "train/build_info.h"

#include <fmt/format.h>

#include <cstdlib>

#include "kernels/bf16_gemm.h"
#include "kernels/cpu.h"
#include "kernels/gemm.h"
#include "kernels/threads.h"
#include "train/process_group.h"

#ifndef TESSERA_VERSION
#define TESSERA_VERSION "dev"
#endif
#ifndef TESSERA_BUILD_TYPE
#define TESSERA_BUILD_TYPE "unknown"
#endif

namespace tessera::train {

std::string build_info_text() {
  using namespace kernels;
  const CpuFeatures& f = cpu_features();
  auto yes = [](bool b) { return b ? "yes" : "no"; };
  std::string out;
  out += fmt::format("tessera {}\n", TESSERA_VERSION);
  out += fmt::format("build type      {}\n", TESSERA_BUILD_TYPE);
  out += fmt::format("compiler        {}\n", __VERSION__);
  out += fmt::format("cpu             {} ({})\n", f.brand.empty() ? "unknown" : f.brand, f.vendor);
  out += fmt::format("cpu features    avx2={} fma={} avx512f={} avx512bw={} avx512vl={} avx512dq={} avx512bf16={} "
                     "amx-tile={} amx-bf16={}\n", yes(f.avx2), yes(f.fma), yes(f.avx512f), yes(f.avx512bw),
                     yes(f.avx512vl), yes(f.avx512dq), yes(f.avx512bf16), yes(f.amx_tile), yes(f.amx_bf16));
  out += fmt::format("simd path       {} (best for this cpu: {}; TESSERA_SIMD overrides)\n", simd_path_name(simd_path()),
                     simd_path_name(best_simd_path()));
  out += fmt::format("gemm            {}\n", gemm_backend_name());
  out += fmt::format("bf16 gemm       {} (best for this cpu: {}; TESSERA_BF16=amx|avx512bf16|convert overrides; used "
                     "by train.precision: bf16 and --precision bf16)\n", bf16_path_name(bf16_path()),
                     bf16_path_name(best_bf16_path()));
  out += fmt::format("threads         {} (TESSERA_THREADS or --threads overrides)\n", num_threads());
  const char* wait = std::getenv("OMP_WAIT_POLICY");
  out += fmt::format("omp wait        {} (OMP_WAIT_POLICY; tessera sets PASSIVE unless given: idle threads sleep, "
                     "so a busy neighbour does not stall a run)\n", wait ? wait : "unset (spinning)");
  out += fmt::format("mpi             {}\n", ProcessGroup::support());
  return out;
}

}  // namespace tessera::train
