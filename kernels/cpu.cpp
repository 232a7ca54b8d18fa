#include "kernels/cpu.h"

#include <cpuid.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>

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
    f.amx_bf16 = d & (1u << 22);
    f.amx_tile = d & (1u << 24);
    const unsigned max_sub = a;
    if (max_sub >= 1) {
      __get_cpuid_count(7, 1, &a, &b, &c, &d);
      f.avx512bf16 = zmm_saved && (a & (1u << 5));
    }
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

// "32768K" from /sys/devices/system/cpu/cpu0/cache/indexN/size for the level-3 unified cache.
int64_t llc_from_sysfs() {
  for (int index = 0; index < 8; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    std::ifstream level_file(dir + "level"), size_file(dir + "size");
    int level = 0;
    std::string size;
    if (!(level_file >> level) || !(size_file >> size) || level != 3 || size.empty()) continue;
    int64_t bytes = std::atoll(size.c_str());
    if (size.back() == 'K') bytes <<= 10;
    if (size.back() == 'M') bytes <<= 20;
    if (bytes > 0) return bytes;
  }
  return 0;
}

// Deterministic cache parameters: CPUID leaf 0x8000001D on AMD, leaf 4 on Intel (same layout):
// ways x partitions x line size x sets of the level-3 entry.
int64_t llc_from_cpuid() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  const bool amd = cpu_features().vendor == "AuthenticAMD";
  const unsigned leaf = amd ? 0x8000001D : 4;
  if ((amd ? __get_cpuid_max(0x80000000, nullptr) : __get_cpuid_max(0, nullptr)) < leaf) return 0;
  for (unsigned sub = 0; sub < 8; ++sub) {
    __get_cpuid_count(leaf, sub, &a, &b, &c, &d);
    if ((a & 0x1f) == 0) break;  // no more caches
    if (((a >> 5) & 0x7) != 3) continue;
    const int64_t ways = ((b >> 22) & 0x3ff) + 1, partitions = ((b >> 12) & 0x3ff) + 1, line = (b & 0xfff) + 1;
    return ways * partitions * line * (int64_t(c) + 1);
  }
  return 0;
}

// sysconf(_SC_LEVEL3_CACHE_SIZE) is not asked: on this (virtual) EPYC glibc reports 384 MiB, the
// L3 of the whole socket, while a core only ever uses its own CCX's 32 MiB.
int64_t detect_llc() {
  if (const int64_t b = llc_from_sysfs(); b > 0) return b;
  if (const int64_t b = llc_from_cpuid(); b > 0) return b;
  return int64_t(32) << 20;
}

// A normal store to a line that is not in cache reads the line first (read-for-ownership): a
// kernel that reads one array and writes one moves 3 bytes for every 2 it needs. A streaming
// store writes whole lines without reading them, but leaves them out of cache, so the next op
// reads them from memory. That only costs nothing when the output would have left the cache
// anyway: a row kernel reads an input as large as its output, and once the two together exceed
// the last-level cache (output >= half of it) the first rows written are evicted before the call
// ends. glibc's memcpy switches to non-temporal stores at a similar size (3/4 of the cache).
// Measured here (softmax, then a row sum that reads its output; 1 thread, 32 MiB L3): streaming
// was 14 % slower for 2-8 MiB outputs, even at 16 MiB, and 2-5 % faster from 32 MiB up.
int64_t default_streaming_threshold() { return last_level_cache_bytes() / 2; }

std::atomic<int64_t>& streaming_threshold() {
  static std::atomic<int64_t> bytes{default_streaming_threshold()};
  return bytes;
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

int64_t last_level_cache_bytes() {
  static const int64_t bytes = detect_llc();
  return bytes;
}

int64_t streaming_store_threshold() { return streaming_threshold().load(std::memory_order_relaxed); }

void set_streaming_store_threshold(int64_t bytes) {
  streaming_threshold().store(bytes < 0 ? default_streaming_threshold() : bytes, std::memory_order_relaxed);
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
