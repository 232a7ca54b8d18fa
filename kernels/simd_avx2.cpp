// AVX2 + FMA build of the SIMD kernels (compiled with -mavx2 -mfma; see CMakeLists.txt).
#include "kernels/simd_kernels.inl"
