#pragma once
// Finite scalar quantization (Mentzer et al. 2023, "Finite Scalar Quantization: VQ-VAE Made
// Simple"): each of d channels is squashed into a bounded range by tanh and rounded to one of
// L_i levels, with a straight-through gradient. The codebook is implicit, the product of the
// levels, and a code's index is the mixed-radix number of its per-channel levels (channel 0 the
// least significant digit). Nothing is learned here, so nothing can collapse.
#include <cstdint>
#include <vector>

#include "nn/module.h"

namespace tessera::nn {

class FiniteScalarQuantizer : public Module {
 public:
  // levels: one entry >= 2 per channel, e.g. {8, 5, 5, 5} (1000 codes).
  explicit FiniteScalarQuantizer(std::vector<int64_t> levels);

  // z [..., d] -> codes [..., d] in [-1, 1] (level / (L / 2) with L / 2 rounded down), the
  // rounding passing its gradient straight through to the bound.
  Tensor forward(const Tensor& z) const;
  // The smooth part before rounding: tanh(z + shift) * half_range - offset per channel. For even
  // L the range is shifted by half a level (offset 0.5, shift atanh(offset / half_range)) so that
  // rounding yields exactly L integers, -L/2 .. L/2 - 1, and z = 0 lands on level 0.
  Tensor bound(const Tensor& z) const;

  // codes [..., d] (as forward returns) -> i64 [...]; integer-valued levels are required.
  Tensor codes_to_indices(const Tensor& codes) const;
  // integer [...] -> codes [..., d] in z's dtype f32; an index outside [0, codebook_size) is an error.
  Tensor indices_to_codes(const Tensor& indices) const;

  int64_t dim() const { return int64_t(levels_.size()); }
  int64_t codebook_size() const { return codebook_size_; }
  const std::vector<int64_t>& levels() const { return levels_; }

 private:
  // Per-channel constants [d] in the dtype asked for.
  Tensor channel_constant(const std::vector<double>& values, DType dtype) const;

  std::vector<int64_t> levels_;
  std::vector<double> half_range_, offset_, shift_, half_width_;
  int64_t codebook_size_ = 1;
};

}  // namespace tessera::nn
