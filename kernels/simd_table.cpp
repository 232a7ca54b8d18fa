#include "kernels/simd_table.h"

#include "kernels/cpu.h"

namespace tessera::kernels {

const SimdTable* simd_table() {
  switch (simd_path()) {
    case SimdPath::scalar: return nullptr;
    case SimdPath::avx2: return &avx2::table();
    case SimdPath::avx512: return &avx512::table();
  }
  return nullptr;
}

}  // namespace tessera::kernels
