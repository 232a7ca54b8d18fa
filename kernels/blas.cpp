#include "kernels/blas.h"

#include <dlfcn.h>

#include <cstdlib>
#include <string>

#include "kernels/cpu.h"

#ifndef TESSERA_OPENBLAS_PATH
#define TESSERA_OPENBLAS_PATH "libopenblas.so.0"
#endif

namespace tessera::kernels::blas {
namespace {

std::string& error_text() {
  static std::string text;
  return text;
}

// The core whose kernels fit this CPU; Debian's 0.3.21 knows none newer than SkylakeX/Cooperlake.
const char* chosen_core() {
  if (const char* forced = std::getenv("TESSERA_OPENBLAS_CORETYPE"); forced && *forced) return forced;
  if (cpu_supports(SimdPath::avx512)) return "SkylakeX";
  if (cpu_supports(SimdPath::avx2)) return "Haswell";
  return nullptr;
}

template <class F>
bool resolve(void* handle, const char* name, F& out) {
  out = reinterpret_cast<F>(dlsym(handle, name));
  if (out == nullptr) error_text() = std::string("OpenBLAS has no symbol ") + name;
  return out != nullptr;
}

const OpenBlas* load() {
  if (const char* core = chosen_core()) setenv("OPENBLAS_CORETYPE", core, 1);
  static OpenBlas lib;
  const char* candidates[] = {TESSERA_OPENBLAS_PATH, "libopenblas.so.0"};
  void* handle = nullptr;
  for (const char* path : candidates) {
    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle) {
      lib.path = path;
      break;
    }
  }
  if (handle == nullptr) {
    const char* why = dlerror();
    error_text() = std::string("cannot load OpenBLAS: ") + (why ? why : "unknown error");
    return nullptr;
  }
  if (!resolve(handle, "cblas_sgemm", lib.sgemm) || !resolve(handle, "cblas_dgemm", lib.dgemm) ||
      !resolve(handle, "openblas_set_num_threads", lib.set_num_threads) ||
      !resolve(handle, "openblas_get_corename", lib.get_corename))
    return nullptr;
  return &lib;
}

}  // namespace

const OpenBlas* openblas() {
  static const OpenBlas* lib = load();
  return lib;
}

const char* load_error() { return error_text().c_str(); }

const char* openblas_core() {
  const OpenBlas* lib = openblas();
  return lib ? lib->get_corename() : "none";
}

}  // namespace tessera::kernels::blas
