// AVX-512 build of the SIMD kernels (compiled with -mavx512f -mavx512bw ...; see CMakeLists.txt).
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_ps(), which -Wmaybe-uninitialized
// misreports (GCC bug 105593); the warnings are silenced for this file only.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "kernels/simd_kernels.inl"
