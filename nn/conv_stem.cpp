#include "nn/conv_stem.h"

#include <algorithm>

#include "autograd/error.h"
#include "autograd/ops.h"
#include "nn/activation.h"
#include "nn/conv.h"

namespace tessera::nn {

int64_t ConvPatchStem::channels_out(int64_t i, int64_t convolutions, int64_t dim) {
  return i == convolutions - 1 ? dim : std::min<int64_t>(int64_t(32) << i, dim);
}

ConvPatchStem::ConvPatchStem(int64_t image_size_, int64_t patch_size_, int64_t in_channels_, int64_t dim_,
                             Generator& gen) {
  set_sizes("ConvPatchStem", image_size_, patch_size_, in_channels_, dim_);
  if (patch_size < 2 || (patch_size & (patch_size - 1)) != 0)
    fail("ConvPatchStem: the patch size must be a power of two (each convolution halves the side), got {}",
         patch_size);
  int64_t convolutions = 0;
  for (int64_t p = patch_size; p > 1; p /= 2) ++convolutions;
  proj = register_module("proj", std::make_shared<Sequential>());
  Conv2dOptions halve;
  halve.stride = {2, 2};
  halve.padding = {1, 1};  // with a 3x3 kernel: out = ceil(in / 2), exact as p divides the image
  int64_t channels = in_channels;
  for (int64_t i = 0; i < convolutions; ++i) {
    if (i > 0) proj->append(std::make_shared<GELU>());
    const int64_t out = channels_out(i, convolutions, dim);
    proj->append(std::make_shared<Conv2d>(channels, out, Size2{3, 3}, halve, true, gen));
    channels = out;
  }
}

Tensor ConvPatchStem::forward(const Tensor& images) {
  check_images("ConvPatchStem", images);
  const Tensor features = proj->forward(images);  // [B, dim, grid, grid]
  return features.reshape({images.size(0), dim, grid * grid}).transpose(1, 2).contiguous();
}

}  // namespace tessera::nn
