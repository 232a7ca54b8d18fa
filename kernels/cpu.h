#pragma once
// CPU features and the SIMD path every kernel dispatches on. The path is chosen once, at first
// use, from what the CPU supports; TESSERA_SIMD=scalar|avx2|avx512 forces a path (a forced path
// the CPU cannot run is refused, not silently downgraded).
#include <cstdint>
#include <string>

namespace tessera::kernels {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512bf16 = false;  // vdpbf16ps, vcvtne2ps2bf16
  bool amx_tile = false;    // AMX tiles (the OS must also grant them: bf16_gemm.h)
  bool amx_bf16 = false;
  std::string vendor;
  std::string brand;
};

enum class SimdPath { scalar = 0, avx2 = 1, avx512 = 2 };

const CpuFeatures& cpu_features();
// The best path this CPU can run.
SimdPath best_simd_path();
// The path in use: TESSERA_SIMD if set, else best_simd_path().
SimdPath simd_path();
// Switch path at run time (tests run every kernel on every path). Throws if the CPU lacks it.
void set_simd_path(SimdPath path);
bool cpu_supports(SimdPath path);
const char* simd_path_name(SimdPath path);
// Parses "scalar", "avx2" or "avx512"; throws std::invalid_argument naming the text otherwise.
SimdPath parse_simd_path(const std::string& text);

// Size of the last-level cache one core sees (its L3 slice: one CCX on AMD), read once from sysfs
// or CPUID; 32 MiB if neither tells.
int64_t last_level_cache_bytes();

// Row kernels whose output (per call) is at least this many bytes write it with streaming
// (non-temporal) stores; see streaming_store_threshold() in cpu.cpp for why this size.
int64_t streaming_store_threshold();
// Tests force either store path: 0 streams every call, INT64_MAX none; a negative value restores
// the default. The two paths give bitwise identical results.
void set_streaming_store_threshold(int64_t bytes);

}  // namespace tessera::kernels
