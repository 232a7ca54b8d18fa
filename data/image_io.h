#pragma once
// Reading PNG (libpng) and JPEG (libjpeg-turbo) images, and resizing them for the importers.
#include <cstdint>
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace tessera::data {

struct Image {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;  // [H,W,C], 8-bit
};

// Decodes a PNG or JPEG file (told apart by their signatures, not by extension) to `channels`
// 1 (gray) or 3 (RGB); alpha is dropped (composited on black). Throws tessera::Error naming the file.
Image read_image(const std::string& path, int64_t channels = 3);

// Resamples to out_h x out_w with a triangle filter widened when shrinking (so downscaling
// averages instead of aliasing), as PIL's antialiased bilinear does.
Image resize(const Image& image, int64_t out_h, int64_t out_w);

// Model output f32 [N, C, H, W] in [0, 1] as 8-bit pixels [N, H, W, C] (clamped, rounded).
std::vector<uint8_t> to_pixels(const Tensor& images);
// The other way: 8-bit pixels [N, H, W, C] -> f32 [N, C, H, W] in [0, 1] (pixel / 255).
Tensor from_pixels(const uint8_t* pixels, int64_t n, int64_t height, int64_t width, int64_t channels);

// Scales the shorter side to `size` and crops the centre size x size.
Image resize_center_crop(const Image& image, int64_t size);

}  // namespace tessera::data
