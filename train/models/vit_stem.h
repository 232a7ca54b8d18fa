#pragma once
// The recipe key that picks a ViT's stem, shared by every model with a ViT trunk (vit, clip and
// siglip's image tower, vlm's), so the three describe and parse it alike.
#include <string>

#include "autograd/error.h"
#include "nn/vit.h"
#include "train/recipe.h"

namespace tessera::train {

inline Field patch_stem_field() {
  return string("patch_stem", "patch",
                "patch: one linear projection per patch (timm's ViT); conv: log2(patch_size) 3x3 stride-2 "
                "convolutions with GELU between (Xiao et al. 2021), same tokens; patch_size a power of two",
                {"patch", "conv"});
}

// The section's stem; `where` is the section's place in the recipe ("model.", "model.image.") for
// the error when a conv stem meets a patch size it cannot make by halving.
inline nn::ViTConfig::Stem patch_stem(const Section& s, const std::string& where) {
  if (s.string("patch_stem") != "conv") return nn::ViTConfig::Stem::patch;
  const int64_t p = s.integer("patch_size");
  if (p < 2 || (p & (p - 1)) != 0)
    fail("{}patch_stem conv halves the image once per convolution, so {}patch_size must be a power of two >= 2, got {}",
         where, where, p);
  return nn::ViTConfig::Stem::conv;
}

}  // namespace tessera::train
