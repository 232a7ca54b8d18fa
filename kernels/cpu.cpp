#include "kernels/cpu.h"

#include <cpuid.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace tessera::kernels {
namespace {

// XCR0 tells whether the OS saves the wide registers; CPUID alone is not enough.
unsigned long long xgetbv0() {
  unsigned eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return f;
  const unsigned max_leaf = a;
  char vendor[13] = {};
  std::memcpy(vendor, &b, 4);
  std::memcpy(vendor + 4, &d, 4);
  std::memcpy(vendor + 8, &c, 4);
  f.vendor = vendor;

  __get_cpuid(1, &a, &b, &c, &d);
  const bool osxsave = c & (1u << 27);
  f.fma = c & (1u << 12);
  const unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
  const bool ymm_saved = (xcr0 & 0x6) == 0x6;
  const bool zmm_saved = (xcr0 & 0xe6) == 0xe6;
  f.fma = f.fma && ymm_saved;
  if (max_leaf >= 7) {
    __get_cpuid_count(7, 0, &a, &b, &c, &d);
    f.avx2 = ymm_saved && (b & (1u << 5));
    f.avx512f = zmm_saved && (b & (1u << 16));
    f.avx512dq = zmm_saved && (b & (1u << 17));
    f.avx512bw = zmm_saved && (b & (1u << 30));
    f.avx512vl = zmm_saved && (b & (1u << 31));
  }
  unsigned ext = __get_cpuid_max(0x80000000, nullptr);
  if (ext >= 0x80000004) {
    char brand[49] = {};
    for (unsigned i = 0; i < 3; ++i) {
      __get_cpuid(0x80000002 + i, &a, &b, &c, &d);
      std::memcpy(brand + 16 * i, &a, 4);
      std::memcpy(brand + 16 * i + 4, &b, 4);
      std::memcpy(brand + 16 * i + 8, &c, 4);
      std::memcpy(brand + 16 * i + 12, &d, 4);
    }
    f.brand = brand;
    while (!f.brand.empty() && f.brand.back() == ' ') f.brand.pop_back();
  }
  return f;
}

SimdPath initial_path() {
  const char* env = std::getenv("TESSERA_SIMD");
  if (env == nullptr || *env == '\0') return best_simd_path();
  const SimdPath forced = parse_simd_path(env);
  if (!cpu_supports(forced))
    throw std::runtime_error(std::string("TESSERA_SIMD=") + env + ": this CPU cannot run that path (best is " +
                             simd_path_name(best_simd_path()) + ")");
  return forced;
}

std::atomic<int>& current_path() {
  static std::atomic<int> path{static_cast<int>(initial_path())};
  return path;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

bool cpu_supports(SimdPath path) {
  const CpuFeatures& f = cpu_features();
  switch (path) {
    case SimdPath::scalar: return true;
    case SimdPath::avx2: return f.avx2 && f.fma;
    case SimdPath::avx512: return f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.fma;
  }
  return false;
}

SimdPath best_simd_path() {
  if (cpu_supports(SimdPath::avx512)) return SimdPath::avx512;
  if (cpu_supports(SimdPath::avx2)) return SimdPath::avx2;
  return SimdPath::scalar;
}

SimdPath simd_path() { return static_cast<SimdPath>(current_path().load(std::memory_order_relaxed)); }

void set_simd_path(SimdPath path) {
  if (!cpu_supports(path))
    throw std::runtime_error(std::string("SIMD path ") + simd_path_name(path) + " is not supported by this CPU");
  current_path().store(static_cast<int>(path), std::memory_order_relaxed);
}

const char* simd_path_name(SimdPath path) {
  switch (path) {
    case SimdPath::scalar: return "scalar";
    case SimdPath::avx2: return "avx2";
    case SimdPath::avx512: return "avx512";
  }
  return "?";
}

SimdPath parse_simd_path(const std::string& text) {
  if (text == "scalar") return SimdPath::scalar;
  if (text == "avx2") return SimdPath::avx2;
  if (text == "avx512") return SimdPath::avx512;
  throw std::invalid_argument("unknown SIMD path '" + text + "' (expected scalar, avx2 or avx512)");
}

}  // namespace tessera::kernels
