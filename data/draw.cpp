#include "data/draw.h"

#include <algorithm>
#include <cmath>

#include "autograd/error.h"

namespace tessera::data {
namespace {

// 5x7 glyphs for printable ASCII 32..126: one row of bits per entry, top row first, the leftmost
// column in bit 4. Rows 0..6 stand on the baseline (lowercase with a 5-row x-height); row 7, the
// cell's spacing row, is used only by the tails of g j p q y, which read badly when squeezed.
constexpr int kGlyphRows = 8;
constexpr int kGlyphColumns = 5;
constexpr char kFirstGlyph = ' ';
constexpr char kLastGlyph = '~';
using Glyph = uint8_t[kGlyphRows];

constexpr Glyph kGlyphs[] = {
    {0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000},  // ' '
    {0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00000, 0b00100, 0b00000},  // !
    {0b01010, 0b01010, 0b01010, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000},  // "
    {0b01010, 0b01010, 0b11111, 0b01010, 0b11111, 0b01010, 0b01010, 0b00000},  // #
    {0b00100, 0b01111, 0b10100, 0b01110, 0b00101, 0b11110, 0b00100, 0b00000},  // $
    {0b11000, 0b11001, 0b00010, 0b00100, 0b01000, 0b10011, 0b00011, 0b00000},  // %
    {0b01100, 0b10010, 0b10100, 0b01000, 0b10101, 0b10010, 0b01101, 0b00000},  // &
    {0b00100, 0b00100, 0b01000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000},  // '
    {0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010, 0b00000},  // (
    {0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000, 0b00000},  // )
    {0b00000, 0b00100, 0b10101, 0b01110, 0b10101, 0b00100, 0b00000, 0b00000},  // *
    {0b00000, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0b00000, 0b00000},  // +
    {0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b00100, 0b01000, 0b00000},  // ,
    {0b00000, 0b00000, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000, 0b00000},  // -
    {0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100, 0b00000},  // .
    {0b00000, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b00000, 0b00000},  // /
    {0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110, 0b00000},  // 0
    {0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110, 0b00000},  // 1
    {0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111, 0b00000},  // 2
    {0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110, 0b00000},  // 3
    {0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010, 0b00000},  // 4
    {0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110, 0b00000},  // 5
    {0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110, 0b00000},  // 6
    {0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00000},  // 7
    {0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110, 0b00000},  // 8
    {0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100, 0b00000},  // 9
    {0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00000, 0b00000},  // :
    {0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b00100, 0b01000, 0b00000},  // ;
    {0b00010, 0b00100, 0b01000, 0b10000, 0b01000, 0b00100, 0b00010, 0b00000},  // <
    {0b00000, 0b00000, 0b11111, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000},  // =
    {0b01000, 0b00100, 0b00010, 0b00001, 0b00010, 0b00100, 0b01000, 0b00000},  // >
    {0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b00000, 0b00100, 0b00000},  // ?
    {0b01110, 0b10001, 0b00001, 0b01101, 0b10101, 0b10101, 0b01110, 0b00000},  // @
    {0b01110, 0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b00000},  // A
    {0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110, 0b00000},  // B
    {0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110, 0b00000},  // C
    {0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100, 0b00000},  // D
    {0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111, 0b00000},  // E
    {0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000, 0b00000},  // F
    {0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111, 0b00000},  // G
    {0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001, 0b00000},  // H
    {0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110, 0b00000},  // I
    {0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100, 0b00000},  // J
    {0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001, 0b00000},  // K
    {0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111, 0b00000},  // L
    {0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001, 0b00000},  // M
    {0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001, 0b00000},  // N
    {0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110, 0b00000},  // O
    {0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000, 0b00000},  // P
    {0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101, 0b00000},  // Q
    {0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001, 0b00000},  // R
    {0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110, 0b00000},  // S
    {0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00000},  // T
    {0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110, 0b00000},  // U
    {0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00000},  // V
    {0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010, 0b00000},  // W
    {0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001, 0b00000},  // X
    {0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100, 0b00000},  // Y
    {0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111, 0b00000},  // Z
    {0b01110, 0b01000, 0b01000, 0b01000, 0b01000, 0b01000, 0b01110, 0b00000},  // [
    {0b00000, 0b10000, 0b01000, 0b00100, 0b00010, 0b00001, 0b00000, 0b00000},  // backslash
    {0b01110, 0b00010, 0b00010, 0b00010, 0b00010, 0b00010, 0b01110, 0b00000},  // ]
    {0b00100, 0b01010, 0b10001, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000},  // ^
    {0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b11111, 0b00000},  // _
    {0b01000, 0b00100, 0b00010, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000},  // `
    {0b00000, 0b00000, 0b01110, 0b00001, 0b01111, 0b10001, 0b01111, 0b00000},  // a
    {0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b11110, 0b00000},  // b
    {0b00000, 0b00000, 0b01110, 0b10000, 0b10000, 0b10001, 0b01110, 0b00000},  // c
    {0b00001, 0b00001, 0b01101, 0b10011, 0b10001, 0b10001, 0b01111, 0b00000},  // d
    {0b00000, 0b00000, 0b01110, 0b10001, 0b11111, 0b10000, 0b01110, 0b00000},  // e
    {0b00110, 0b01001, 0b01000, 0b11100, 0b01000, 0b01000, 0b01000, 0b00000},  // f
    {0b00000, 0b00000, 0b01111, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110},  // g
    {0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001, 0b00000},  // h
    {0b00100, 0b00000, 0b01100, 0b00100, 0b00100, 0b00100, 0b01110, 0b00000},  // i
    {0b00010, 0b00000, 0b00110, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100},  // j
    {0b10000, 0b10000, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b00000},  // k
    {0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110, 0b00000},  // l
    {0b00000, 0b00000, 0b11010, 0b10101, 0b10101, 0b10001, 0b10001, 0b00000},  // m
    {0b00000, 0b00000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001, 0b00000},  // n
    {0b00000, 0b00000, 0b01110, 0b10001, 0b10001, 0b10001, 0b01110, 0b00000},  // o
    {0b00000, 0b00000, 0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000},  // p
    {0b00000, 0b00000, 0b01111, 0b10001, 0b10001, 0b01111, 0b00001, 0b00001},  // q
    {0b00000, 0b00000, 0b10110, 0b11001, 0b10000, 0b10000, 0b10000, 0b00000},  // r
    {0b00000, 0b00000, 0b01110, 0b10000, 0b01110, 0b00001, 0b11110, 0b00000},  // s
    {0b01000, 0b01000, 0b11100, 0b01000, 0b01000, 0b01001, 0b00110, 0b00000},  // t
    {0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b10011, 0b01101, 0b00000},  // u
    {0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00000},  // v
    {0b00000, 0b00000, 0b10001, 0b10001, 0b10101, 0b10101, 0b01010, 0b00000},  // w
    {0b00000, 0b00000, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b00000},  // x
    {0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110},  // y
    {0b00000, 0b00000, 0b11111, 0b00010, 0b00100, 0b01000, 0b11111, 0b00000},  // z
    {0b00010, 0b00100, 0b00100, 0b01000, 0b00100, 0b00100, 0b00010, 0b00000},  // {
    {0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00000},  // |
    {0b01000, 0b00100, 0b00100, 0b00010, 0b00100, 0b00100, 0b01000, 0b00000},  // }
    {0b00000, 0b00000, 0b01000, 0b10101, 0b00010, 0b00000, 0b00000, 0b00000},  // ~
};
static_assert(std::size(kGlyphs) == kLastGlyph - kFirstGlyph + 1, "one glyph per printable ASCII character");
static_assert(kGlyphColumns < kGlyphCellWidth && kGlyphRows <= kGlyphCellHeight, "glyphs leave a spacing column");

constexpr Glyph kUnknownGlyph = {0b00000, 0b11111, 0b10001, 0b10001, 0b10001, 0b11111, 0b00000, 0b00000};

const Glyph& glyph_of(unsigned char c) {
  if (c < kFirstGlyph || c > kLastGlyph) return kUnknownGlyph;
  return kGlyphs[c - kFirstGlyph];
}

// The bytes of `text` that begin a character: all but UTF-8 continuation bytes (10xxxxxx), so
// a multi-byte character takes one cell, as it does on screen.
bool starts_character(unsigned char c) { return (c & 0xC0) != 0x80; }

int64_t character_count(const std::string& text) {
  return std::count_if(text.begin(), text.end(), [](char c) { return starts_character(static_cast<unsigned char>(c)); });
}

// Fills [y0,y1) x [x0,x1), the part of it inside the image.
void fill_rect(uint8_t* rgb, int64_t height, int64_t width, int64_t y0, int64_t x0, int64_t y1, int64_t x1,
               Color color) {
  y0 = std::max<int64_t>(y0, 0), x0 = std::max<int64_t>(x0, 0);
  y1 = std::min(y1, height), x1 = std::min(x1, width);
  for (int64_t y = y0; y < y1; ++y) {
    for (int64_t x = x0; x < x1; ++x) {
      uint8_t* pixel = rgb + (y * width + x) * 3;
      pixel[0] = color.r, pixel[1] = color.g, pixel[2] = color.b;
    }
  }
}

// A box edge in pixels, rounded to the nearest pixel edge. Edges far outside the image are
// pulled in to `margin` pixels beyond it (so that they fit an int64 whatever the float) without
// changing which pixels a band of `margin - 1` pixels along them covers inside the image.
int64_t pixel_edge(float edge, int64_t size, int64_t margin) {
  const double rounded = std::floor(double(edge) + 0.5);
  return int64_t(std::clamp(rounded, -double(margin), double(size + margin)));
}

void check_scale(const char* what, const char* name, int64_t value) {
  if (value < 1) fail("{}: {} must be at least 1, got {}", what, name, value);
}

}  // namespace

void draw_box(uint8_t* rgb, int64_t height, int64_t width, float y0, float x0, float y1, float x1, Color color,
              int thickness) {
  check_scale("draw_box", "thickness", thickness);
  if (std::isnan(y0) || std::isnan(x0) || std::isnan(y1) || std::isnan(x1)) return;
  const int64_t margin = int64_t(thickness) + 1;
  const int64_t top = pixel_edge(y0, height, margin), bottom = pixel_edge(y1, height, margin);
  const int64_t left = pixel_edge(x0, width, margin), right = pixel_edge(x1, width, margin);
  if (top >= bottom || left >= right) return;
  // Each band stays inside the rectangle, so a box thinner than two bands is filled.
  const int64_t band_bottom = std::min(top + thickness, bottom), band_top = std::max(bottom - thickness, top);
  const int64_t band_right = std::min(left + thickness, right), band_left = std::max(right - thickness, left);
  fill_rect(rgb, height, width, top, left, band_bottom, right, color);
  fill_rect(rgb, height, width, band_top, left, bottom, right, color);
  fill_rect(rgb, height, width, top, left, bottom, band_right, color);
  fill_rect(rgb, height, width, top, band_left, bottom, right, color);
}

int64_t text_width(const std::string& text, int scale) {
  check_scale("text_width", "scale", scale);
  return character_count(text) * kGlyphCellWidth * scale;
}

int64_t text_height(int scale) {
  check_scale("text_height", "scale", scale);
  return int64_t(kGlyphCellHeight) * scale;
}

void draw_text(uint8_t* rgb, int64_t height, int64_t width, int64_t y, int64_t x, const std::string& text, Color fg,
               const Color* background, int scale) {
  check_scale("draw_text", "scale", scale);
  if (background)
    fill_rect(rgb, height, width, y, x, y + text_height(scale), x + text_width(text, scale), *background);
  int64_t cell_x = x;
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (!starts_character(byte)) continue;
    if (cell_x >= width) break;  // the rest of the text is right of the image
    const Glyph& glyph = glyph_of(byte);
    for (int row = 0; row < kGlyphRows; ++row) {
      for (int column = 0; column < kGlyphColumns; ++column) {
        if (!(glyph[row] >> (kGlyphColumns - 1 - column) & 1)) continue;
        const int64_t top = y + int64_t(row) * scale, left = cell_x + int64_t(column) * scale;
        fill_rect(rgb, height, width, top, left, top + scale, left + scale, fg);
      }
    }
    cell_x += int64_t(kGlyphCellWidth) * scale;
  }
}

std::vector<uint8_t> to_rgb_zoomed(const uint8_t* pixels, int64_t height, int64_t width, int64_t channels, int zoom) {
  check_scale("to_rgb_zoomed", "zoom", zoom);
  if (channels < 1 || channels > 4) fail("to_rgb_zoomed: {} channels, expected 1 to 4", channels);
  if (height < 0 || width < 0) fail("to_rgb_zoomed: cannot zoom an image of {}x{}", height, width);
  const int64_t out_width = width * zoom;
  std::vector<uint8_t> rgb(size_t(height * zoom * out_width * 3));
  for (int64_t y = 0; y < height * zoom; ++y) {
    const uint8_t* source_row = pixels + (y / zoom) * width * channels;
    uint8_t* out = rgb.data() + y * out_width * 3;
    for (int64_t x = 0; x < out_width; ++x, out += 3) {
      const uint8_t* pixel = source_row + (x / zoom) * channels;
      // Gray (with or without alpha) repeats channel 0; colour keeps the first three.
      const bool gray = channels < 3;
      out[0] = pixel[0], out[1] = pixel[gray ? 0 : 1], out[2] = pixel[gray ? 0 : 2];
    }
  }
  return rgb;
}

Color palette_color(int64_t index) {
  // Hue in 1/65536 turns, stepped by the golden ratio (40503 / 65536 = 0.618...); integer
  // arithmetic, so every machine gives the same colours. Saturation 80 %, value 100 %.
  constexpr uint32_t kHigh = 255, kLow = 51;
  const uint32_t hue = uint32_t(uint64_t(index) * 40503u & 0xFFFF) * 6;  // sector in the top bits
  const uint32_t rising = kLow + (kHigh - kLow) * (hue & 0xFFFF) / 0x10000;
  const uint32_t falling = kHigh + kLow - rising;
  auto rgb = [](uint32_t r, uint32_t g, uint32_t b) { return Color{uint8_t(r), uint8_t(g), uint8_t(b)}; };
  switch (hue >> 16) {
    case 0: return rgb(kHigh, rising, kLow);
    case 1: return rgb(falling, kHigh, kLow);
    case 2: return rgb(kLow, kHigh, rising);
    case 3: return rgb(kLow, falling, kHigh);
    case 4: return rgb(rising, kLow, kHigh);
    default: return rgb(kHigh, kLow, falling);
  }
}

}  // namespace tessera::data
