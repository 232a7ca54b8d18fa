#pragma once
// Annotation drawing on RGB images u8 [H,W,3] (row-major): object boxes, class-name labels in a
// built-in 5x7 bitmap font, and class colours. Used by `tessera data info` on scene data sets;
// everything is clipped to the image, so boxes and labels may stick out of it.
#include <cstdint>
#include <string>
#include <vector>

namespace tessera::data {

struct Color {
  uint8_t r, g, b;
  bool operator==(const Color&) const = default;
};

// The outline of the rectangle [y0,y1) x [x0,x1) in pixel edges, as boxes are stored
// (y_min, x_min, y_max, x_max), `thickness` pixels wide and drawn inside the rectangle.
// Fractional edges round to the nearest pixel edge; an empty rectangle draws nothing.
void draw_box(uint8_t* rgb, int64_t height, int64_t width, float y0, float x0, float y1, float x1, Color color,
              int thickness = 1);

// Text with its top-left corner at (y, x), one glyph cell of kGlyphCellWidth x kGlyphCellHeight
// pixels per character, each pixel scaled to `scale` x `scale`. With a `background`, the whole
// text_width x text_height block is filled first, so the label stays readable over the image.
// Characters outside printable ASCII draw as a small box (a UTF-8 sequence as one box).
void draw_text(uint8_t* rgb, int64_t height, int64_t width, int64_t y, int64_t x, const std::string& text, Color fg,
               const Color* background = nullptr, int scale = 1);

inline constexpr int kGlyphCellWidth = 6;   // 5 columns of ink and 1 of spacing
inline constexpr int kGlyphCellHeight = 8;  // 7 rows to the baseline and 1 for descenders
int64_t text_width(const std::string& text, int scale = 1);
int64_t text_height(int scale = 1);

// Images [H,W,C] u8 -> RGB [H*zoom, W*zoom, 3], each pixel repeated zoom x zoom times.
// C = 1 (gray) or 2 (gray + alpha) repeat the gray value; C = 3 or 4 keep R, G, B; alpha is dropped.
std::vector<uint8_t> to_rgb_zoomed(const uint8_t* pixels, int64_t height, int64_t width, int64_t channels, int zoom);

// The colour of class `index`: bright, saturated hues that step by the golden ratio around the
// colour wheel, so neighbouring indices are far apart; the same index always gives the same colour.
Color palette_color(int64_t index);

}  // namespace tessera::data
