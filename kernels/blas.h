#pragma once
// OpenBLAS, loaded at run time. Debian's OpenBLAS 0.3.21 does not recognise recent CPUs (AMD
// Zen 4/5 with AVX-512) and falls back to its SSE3 kernels unless OPENBLAS_CORETYPE names a core
// before the library initialises; linking it would load it before main() could say anything.
// So we dlopen it on first use, after choosing the core from the CPU features we detect:
// SkylakeX with AVX-512, Haswell with AVX2, else the library's own choice.
// TESSERA_OPENBLAS_CORETYPE overrides that choice (it wins over a pre-set OPENBLAS_CORETYPE).
#include <cblas.h>

namespace tessera::kernels::blas {

struct OpenBlas {
  decltype(&cblas_sgemm) sgemm = nullptr;
  decltype(&cblas_dgemm) dgemm = nullptr;
  void (*set_num_threads)(int) = nullptr;
  char* (*get_corename)() = nullptr;
  const char* path = nullptr;
};

// The loaded library, or nullptr when it could not be loaded (why: load_error()).
const OpenBlas* openblas();
const char* load_error();
// The core type OpenBLAS runs its kernels for ("SkylakeX", "Haswell", ...), or "none".
const char* openblas_core();

}  // namespace tessera::kernels::blas
