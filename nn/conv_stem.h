#pragma once
// ConvPatchStem: a ViT stem of 3x3 stride-2 convolutions in place of the p x p patch projection
// (Xiao et al. 2021, "Early convolutions help transformers see better"): log2(p) of them with GELU
// between, 32, 64, ... channels and `dim` out of the last, so an S x S image still becomes
// (S/p)^2 tokens of width `dim`. Overlapping 3x3 windows let a token see an object that straddles
// a patch border, which a linear patch projection cannot: the scenes' 14-pixel items cut by 8-pixel
// patches are what it is for (docs/RESULTS.md, the conv-stem probe).
// The convolutions are `proj.0`, `proj.2`, ... (GELUs at the odd indices), as torch's nn.Sequential
// names them, so `patch_embed.proj.0.weight` is what a PyTorch model with such a stem calls it.
#include <memory>

#include "autograd/random.h"
#include "nn/patch_embed.h"
#include "nn/sequential.h"

namespace tessera::nn {

class ConvPatchStem : public PatchStem {
 public:
  // patch_size must be a power of two, at least 2. Convolutions initialised as PyTorch's Conv2d.
  ConvPatchStem(int64_t image_size, int64_t patch_size, int64_t in_channels, int64_t dim, Generator& gen);
  Tensor forward(const Tensor& images) override;

  // Channels out of convolution i of n = log2(p): min(32 * 2^i, dim), and dim for the last.
  static int64_t channels_out(int64_t i, int64_t convolutions, int64_t dim);

  std::shared_ptr<Sequential> proj;
};

}  // namespace tessera::nn
