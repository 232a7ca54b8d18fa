#pragma once
// Matrix products in bfloat16 with fp32 accumulation: op(A) and op(B) are rounded to bf16 (to
// nearest even) as they are packed, products of two bf16 values are exact in fp32, and the sums
// are fp32. Same interface as gemm() (fp32 in, fp32 out), so every caller of gemm() gets it when
// the matrix-product precision is bf16 (gemm.h, set_matmul_precision).
//
// Three paths, chosen once like the SIMD path (cpu.h); TESSERA_BF16=amx|avx512bf16|convert forces
// one (a path the CPU cannot run is refused, not downgraded):
// - amx: Intel AMX tiles (Sapphire Rapids and later): 16x16 fp32 blocks of C += 16x32 bf16 A tile
//   times 32x16 B tile, 1024 multiply-adds per instruction. Linux hands out the tile state only
//   to a process that asked for it (arch_prctl ARCH_REQ_XCOMP_PERM); the request is made the first
//   time the path is considered, and a refusal makes the path unavailable.
// - avx512bf16: vdpbf16ps (AMD Zen 4/5, Intel Cooper Lake and later): 16 lanes each add the dot
//   product of two bf16 pairs, twice fp32 FMA's multiply-adds per instruction.
// - convert: anywhere else: the operands are rounded to bf16 into scratch fp32 copies and our fp32
//   GEMM multiplies those, so the numbers match the other paths but not their speed.
#include <string>

#include "kernels/gemm.h"

namespace tessera::kernels {

enum class Bf16Path { convert = 0, avx512bf16 = 1, amx = 2 };

bool cpu_supports(Bf16Path path);
// The fastest path this CPU (and OS) can run.
Bf16Path best_bf16_path();
// The path in use: TESSERA_BF16 if set, else best_bf16_path().
Bf16Path bf16_path();
// Switch path at run time (tests run every path the machine has). Throws if the CPU lacks it.
void set_bf16_path(Bf16Path path);
const char* bf16_path_name(Bf16Path path);
// Parses "amx", "avx512bf16" or "convert"; throws std::invalid_argument naming the text otherwise.
Bf16Path parse_bf16_path(const std::string& text);

// C = alpha op(A) op(B) + beta C with op(A), op(B) rounded to bf16 and fp32 sums; beta == 0 never
// reads C. Split over num_threads() by rectangles of C (k is never split, so C does not depend on
// the thread count or on how C is cut).
void gemm_bf16(const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c);

}  // namespace tessera::kernels
