#pragma once
// PNG output for sample grids and reconstructions (libpng).
#include <cstdint>
#include <string>

namespace tessera::data {

// Writes an 8-bit PNG of `pixels` [H,W,C] (C: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA).
// Written to a temporary file and renamed; throws tessera::Error naming the path.
void write_png(const std::string& path, const uint8_t* pixels, int64_t height, int64_t width, int64_t channels);

// The same PNG as bytes in memory (for pages that inline their images).
std::string encode_png(const uint8_t* pixels, int64_t height, int64_t width, int64_t channels);

// Tiles images [N,H,W,C] u8 into a grid of `nrow` images per row, `padding` pixels apart
// (padding pixels are black), and writes it as a PNG.
void write_image_grid(const std::string& path, const uint8_t* images, int64_t n, int64_t height, int64_t width,
                      int64_t channels, int64_t nrow = 8, int64_t padding = 2);

// A PNG output may replace an earlier PNG (a picture is a by-product, rewritten on each run) but
// nothing else: an existing `path` that is not a PNG is refused, naming `option` ("--out").
void refuse_non_png_output(const std::string& path, const std::string& option);

}  // namespace tessera::data
