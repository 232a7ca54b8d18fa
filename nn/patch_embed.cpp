#include "nn/patch_embed.h"

#include <cmath>

#include "autograd/error.h"
#include "autograd/ops.h"
#include "nn/init.h"

namespace tessera::nn {

PatchProjection::PatchProjection(int64_t in_channels, int64_t dim, int64_t patch, Generator& gen) {
  Tensor w = Tensor::empty({dim, in_channels, patch, patch});
  init::kaiming_uniform_default_(w, gen);
  weight = register_parameter("weight", w);
  const double bound = 1.0 / std::sqrt(double(in_channels * patch * patch));
  Tensor b = Tensor::empty({dim});
  init::uniform_(b, -bound, bound, gen);
  bias = register_parameter("bias", b);
}

void PatchStem::set_sizes(const char* who, int64_t image_size_, int64_t patch_size_, int64_t in_channels_,
                          int64_t dim_) {
  if (image_size_ <= 0 || patch_size_ <= 0 || in_channels_ <= 0 || dim_ <= 0)
    fail("{}: sizes must be positive (image {}, patch {}, channels {}, dim {})", who, image_size_, patch_size_,
         in_channels_, dim_);
  if (image_size_ % patch_size_ != 0)
    fail("{}: image size {} is not a multiple of the patch size {}", who, image_size_, patch_size_);
  image_size = image_size_;
  patch_size = patch_size_;
  in_channels = in_channels_;
  dim = dim_;
  grid = image_size / patch_size;
}

void PatchStem::check_images(const char* who, const Tensor& images) const {
  if (images.dim() != 4 || images.size(1) != in_channels || images.size(2) != image_size ||
      images.size(3) != image_size)
    fail("{}: images {} are not [B, {}, {}, {}]", who, images.shape_string(), in_channels, image_size, image_size);
}

PatchEmbed::PatchEmbed(int64_t image_size_, int64_t patch_size_, int64_t in_channels_, int64_t dim_, Generator& gen) {
  set_sizes("PatchEmbed", image_size_, patch_size_, in_channels_, dim_);
  proj = register_module("proj", std::make_shared<PatchProjection>(in_channels, dim, patch_size, gen));
}

Tensor PatchEmbed::forward(const Tensor& images) {
  check_images("PatchEmbed", images);
  const int64_t B = images.size(0), p = patch_size, g = grid;
  // [B, C, g, p, g, p] -> [B, g, g, C, p, p]: each patch's pixels in the weight's (C, p, p) order
  const Tensor patches = images.reshape({B, in_channels, g, p, g, p})
                             .permute({0, 2, 4, 1, 3, 5})
                             .reshape({B * g * g, in_channels * p * p});
  const Tensor w = proj->weight.reshape({dim, in_channels * p * p});
  return (matmul(patches, w.t()) + proj->bias).reshape({B, g * g, dim});
}

}  // namespace tessera::nn
