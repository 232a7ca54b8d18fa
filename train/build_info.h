#pragma once
// What this build is and what it runs on this machine: `tessera info` prints it, run reports
// include it (figures name the CPU they were measured on).
#include <string>

namespace tessera::train {

// Lines "key   value": version, build type, compiler, CPU and its features, SIMD path, GEMM,
// bf16 GEMM, threads, MPI.
std::string build_info_text();

}  // namespace tessera::train
