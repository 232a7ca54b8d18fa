#pragma once
// PatchEmbed: images [B, C, H, W] cut into non-overlapping p x p patches, each projected to a
// `dim`-wide token -> [B, (H/p)*(W/p), dim], patches in row-major order. This is a Conv2d with
// kernel = stride = p, and it stores its parameters as one (`proj.weight` [dim, C, p, p],
// `proj.bias` [dim]) so checkpoints match timm's PatchEmbed; it runs as one GEMM over the
// unfolded patches, which for this stride is all a convolution does.
#include <memory>

#include "autograd/random.h"
#include "nn/module.h"

namespace tessera::nn {

// What a ViT's stem is, whichever way it cuts the image: images [B, C, S, S] -> [B, grid*grid, dim]
// tokens in row-major order, grid = S / patch_size. PatchEmbed below is one linear projection per
// patch (timm's); ConvPatchStem (nn/conv_stem.h) a stack of strided convolutions.
class PatchStem : public UnaryModule {
 public:
  int64_t num_patches() const { return grid * grid; }
  int64_t image_size = 0, patch_size = 0, in_channels = 0, dim = 0, grid = 0;

 protected:
  // Checks the sizes (naming `who` in the error) and sets the fields.
  void set_sizes(const char* who, int64_t image_size, int64_t patch_size, int64_t in_channels, int64_t dim);
  // Throws unless images are [B, in_channels, image_size, image_size].
  void check_images(const char* who, const Tensor& images) const;
};

// The parameters of the patch projection, kept in a child named `proj` as timm does.
class PatchProjection : public Module {
 public:
  PatchProjection(int64_t in_channels, int64_t dim, int64_t patch, Generator& gen);
  Tensor weight;  // [dim, C, p, p]
  Tensor bias;    // [dim]
};

class PatchEmbed : public PatchStem {
 public:
  // Initialised as PyTorch's Conv2d (uniform +-1/sqrt(C*p*p)), as timm leaves it.
  PatchEmbed(int64_t image_size, int64_t patch_size, int64_t in_channels, int64_t dim, Generator& gen);
  Tensor forward(const Tensor& images) override;

  std::shared_ptr<PatchProjection> proj;
};

}  // namespace tessera::nn
