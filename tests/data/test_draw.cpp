// Annotation drawing: box outlines (exact pixels, rounding, clipping at every edge), the bitmap
// font (every glyph, lowercase against uppercase, ink inside the text block, background, scale),
// zoom to RGB and the class palette. Images sit between guard bytes that must stay untouched,
// so a write outside the image fails a test even without a sanitizer.
#include "data/draw.h"

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <limits>
#include <set>

#include "autograd/error.h"

using namespace tessera;
using namespace tessera::data;

namespace tessera::data {
std::ostream& operator<<(std::ostream& out, Color c) { return out << "rgb(" << +c.r << ", " << +c.g << ", " << +c.b << ")"; }
}  // namespace tessera::data

namespace {

constexpr Color kBlack{0, 0, 0}, kRed{255, 0, 0}, kWhite{255, 255, 255}, kBlue{0, 0, 200};
constexpr int64_t kGuard = 64;      // bytes before and after every image
constexpr uint8_t kGuardByte = 0xA5;

// An RGB image [H,W,3] filled with one colour, between guard bytes.
class Canvas {
 public:
  Canvas(int64_t height, int64_t width, Color fill = kBlack)
      : height_(height), width_(width), bytes_(size_t(kGuard * 2 + height * width * 3), kGuardByte) {
    for (int64_t i = 0; i < height * width; ++i) set(i / width, i % width, fill);
  }
  uint8_t* data() { return bytes_.data() + kGuard; }
  int64_t height() const { return height_; }
  int64_t width() const { return width_; }
  Color at(int64_t y, int64_t x) const {
    const uint8_t* p = bytes_.data() + kGuard + (y * width_ + x) * 3;
    return {p[0], p[1], p[2]};
  }
  void set(int64_t y, int64_t x, Color c) {
    uint8_t* p = data() + (y * width_ + x) * 3;
    p[0] = c.r, p[1] = c.g, p[2] = c.b;
  }
  bool guards_intact() const {
    for (int64_t i = 0; i < kGuard; ++i)
      if (bytes_[size_t(i)] != kGuardByte || bytes_[bytes_.size() - 1 - size_t(i)] != kGuardByte) return false;
    return true;
  }
  std::vector<uint8_t> pixels() const { return {bytes_.begin() + kGuard, bytes_.end() - kGuard}; }
  int64_t count(Color c) const {
    int64_t n = 0;
    for (int64_t y = 0; y < height_; ++y)
      for (int64_t x = 0; x < width_; ++x) n += at(y, x) == c;
    return n;
  }

 private:
  int64_t height_, width_;
  std::vector<uint8_t> bytes_;
};

// Whether pixel (y, x) belongs to the outline of a box, said as a predicate over one pixel
// (the code under test fills bands instead): inside the rounded rectangle and within
// `thickness` of one of its edges.
bool on_outline(int64_t y, int64_t x, float y0, float x0, float y1, float x1, int thickness) {
  const double top = std::floor(double(y0) + 0.5), bottom = std::floor(double(y1) + 0.5);
  const double left = std::floor(double(x0) + 0.5), right = std::floor(double(x1) + 0.5);
  const double py = double(y), px = double(x);
  if (py < top || py >= bottom || px < left || px >= right) return false;
  return py < top + thickness || py >= bottom - thickness || px < left + thickness || px >= right - thickness;
}

// Draws one box and checks every pixel of the image against on_outline.
void check_box(int64_t height, int64_t width, float y0, float x0, float y1, float x1, int thickness) {
  Canvas canvas(height, width);
  draw_box(canvas.data(), height, width, y0, x0, y1, x1, kRed, thickness);
  BOOST_TEST_CONTEXT("box (" << y0 << ", " << x0 << ", " << y1 << ", " << x1 << ") thickness " << thickness) {
    BOOST_TEST(canvas.guards_intact());
    for (int64_t y = 0; y < height; ++y)
      for (int64_t x = 0; x < width; ++x) {
        const Color expected = on_outline(y, x, y0, x0, y1, x1, thickness) ? kRed : kBlack;
        if (!(canvas.at(y, x) == expected)) BOOST_ERROR("pixel (" << y << ", " << x << ") wrong");
      }
  }
}

// The 6x8 cell of `c` drawn alone at scale 1, as 48 booleans (ink or not).
std::vector<bool> glyph_bitmap(const std::string& c) {
  Canvas canvas(text_height(), text_width(c));
  draw_text(canvas.data(), canvas.height(), canvas.width(), 0, 0, c, kWhite);
  std::vector<bool> ink;
  for (int64_t y = 0; y < canvas.height(); ++y)
    for (int64_t x = 0; x < canvas.width(); ++x) ink.push_back(canvas.at(y, x) == kWhite);
  return ink;
}

bool any_ink(const std::vector<bool>& bitmap) { return std::find(bitmap.begin(), bitmap.end(), true) != bitmap.end(); }

}  // namespace

BOOST_AUTO_TEST_SUITE(draw)

BOOST_AUTO_TEST_CASE(box_outline_is_exactly_the_edge_pixels_inside_the_rectangle) {
  Canvas canvas(10, 12);
  draw_box(canvas.data(), 10, 12, 2, 3, 7, 9, kRed);
  // Rows 2..6 and columns 3..8: the corners and edges are red, the interior and outside are not.
  BOOST_TEST(canvas.at(2, 3) == kRed);
  BOOST_TEST(canvas.at(6, 8) == kRed);
  BOOST_TEST(canvas.at(4, 3) == kRed);
  BOOST_TEST(canvas.at(2, 6) == kRed);
  BOOST_TEST(canvas.at(3, 4) == kBlack);
  BOOST_TEST(canvas.at(5, 7) == kBlack);
  BOOST_TEST(canvas.at(7, 5) == kBlack);  // y1 is exclusive
  BOOST_TEST(canvas.at(4, 9) == kBlack);  // x1 is exclusive
  BOOST_TEST(canvas.at(1, 3) == kBlack);
  BOOST_TEST(canvas.count(kRed) == 2 * 6 + 2 * 3);
  check_box(10, 12, 2, 3, 7, 9, 1);
  check_box(10, 12, 2, 3, 7, 9, 2);
  check_box(10, 12, 2, 3, 7, 9, 3);  // thicker than half the box: filled
  check_box(10, 12, 0, 0, 10, 12, 1);
}

BOOST_AUTO_TEST_CASE(fractional_edges_round_to_the_nearest_pixel_edge) {
  Canvas rounded(10, 12), exact(10, 12);
  draw_box(rounded.data(), 10, 12, 1.6f, 2.4f, 6.5f, 8.49f, kRed, 2);
  draw_box(exact.data(), 10, 12, 2, 2, 7, 8, kRed, 2);
  BOOST_TEST(rounded.pixels() == exact.pixels());
  check_box(10, 12, 0.3f, 0.7f, 9.2f, 10.51f, 1);
}

BOOST_AUTO_TEST_CASE(empty_and_degenerate_boxes_draw_nothing) {
  for (auto [y0, x0, y1, x1] : {std::array{3.f, 3.f, 3.f, 8.f}, {5.f, 2.f, 2.f, 8.f}, {2.f, 4.2f, 6.f, 4.4f}}) {
    Canvas canvas(8, 10);
    draw_box(canvas.data(), 8, 10, y0, x0, y1, x1, kRed);
    BOOST_TEST(canvas.count(kRed) == 0);
  }
  Canvas canvas(8, 10);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  draw_box(canvas.data(), 8, 10, nan, 1, 5, 5, kRed);
  BOOST_TEST(canvas.count(kRed) == 0);
  BOOST_CHECK_THROW(draw_box(canvas.data(), 8, 10, 1, 1, 5, 5, kRed, 0), Error);
}

BOOST_AUTO_TEST_CASE(boxes_clip_at_every_edge_without_writing_outside) {
  // Every edge before, on, inside and past each side of a 6x7 image, partly and wholly outside.
  const std::array<float, 8> edges{-9.f, -2.f, -0.5f, 0.f, 2.f, 5.6f, 7.f, 11.f};
  for (int thickness : {1, 2, 4})
    for (float y0 : edges)
      for (float y1 : edges)
        for (float x0 : edges)
          for (float x1 : edges) check_box(6, 7, y0, x0, y1, x1, thickness);
  const float inf = std::numeric_limits<float>::infinity();
  check_box(6, 7, -inf, -inf, inf, inf, 3);
  check_box(6, 7, -1e30f, 2, 1e30f, 1e30f, 2);
  check_box(6, 7, 1e30f, 1e30f, inf, inf, 1);
  check_box(0, 0, 1, 1, 4, 4, 1);
}

BOOST_AUTO_TEST_CASE(every_printable_glyph_has_ink_inside_its_box_and_all_differ) {
  std::set<std::vector<bool>> seen;
  std::set<char> seen_descender;
  for (int c = 32; c <= 126; ++c) {
    BOOST_TEST_CONTEXT("character '" << char(c) << "'") {
      const std::vector<bool> bitmap = glyph_bitmap(std::string(1, char(c)));
      BOOST_TEST(any_ink(bitmap) == (c != ' '));
      // The last column is spacing; the last row holds only the tails of g j p q y.
      const bool descends = std::string("gjpqy").find(char(c)) != std::string::npos;
      for (int64_t i = 0; i < int64_t(bitmap.size()); ++i) {
        const bool bottom_row = i / kGlyphCellWidth == kGlyphCellHeight - 1;
        if (i % kGlyphCellWidth == kGlyphCellWidth - 1 || (bottom_row && !descends)) BOOST_TEST(!bitmap[size_t(i)]);
        if (bottom_row && descends && bitmap[size_t(i)]) seen_descender.insert(char(c));
      }
      BOOST_TEST(seen.insert(bitmap).second);
    }
  }
  BOOST_TEST(seen_descender == (std::set<char>{'g', 'j', 'p', 'q', 'y'}));
}

BOOST_AUTO_TEST_CASE(lowercase_letters_are_their_own_shapes) {
  for (char lower = 'a'; lower <= 'z'; ++lower) {
    const char upper = char(lower - 'a' + 'A');
    const std::vector<bool> small = glyph_bitmap(std::string(1, lower)), capital = glyph_bitmap(std::string(1, upper));
    BOOST_TEST((small != capital), lower << " looks like " << upper);
    // Letters without an ascender (all but b d f h i j k l t) leave the top row empty.
    if (std::string("bdfhijklt").find(lower) == std::string::npos)
      for (int x = 0; x < kGlyphCellWidth; ++x) BOOST_TEST(!small[size_t(x)], lower << " has ink in the top row");
  }
}

BOOST_AUTO_TEST_CASE(each_character_of_a_string_gets_its_own_cell) {
  Canvas canvas(text_height(), text_width("abc"));
  BOOST_TEST(canvas.width() == 3 * kGlyphCellWidth);
  draw_text(canvas.data(), canvas.height(), canvas.width(), 0, 0, "abc", kWhite);
  std::vector<bool> cells[3];
  for (int i = 0; i < 3; ++i)
    for (int64_t y = 0; y < canvas.height(); ++y)
      for (int64_t x = 0; x < kGlyphCellWidth; ++x) cells[i].push_back(canvas.at(y, i * kGlyphCellWidth + x) == kWhite);
  BOOST_TEST((cells[0] != cells[1]));
  BOOST_TEST((cells[1] != cells[2]));
  BOOST_TEST((cells[0] != cells[2]));
  BOOST_TEST(cells[0] == glyph_bitmap("a"));
  BOOST_TEST(cells[2] == glyph_bitmap("c"));
}

BOOST_AUTO_TEST_CASE(ink_stays_inside_the_text_block) {
  for (int scale : {1, 2, 3}) {
    const std::string text = "T-shirt/top (9): ankle boot?";
    const int64_t y = 5, x = 3, w = text_width(text, scale), h = text_height(scale);
    BOOST_TEST(w == int64_t(text.size()) * kGlyphCellWidth * scale);
    BOOST_TEST(h == kGlyphCellHeight * scale);
    Canvas canvas(h + 10, w + 8);
    draw_text(canvas.data(), canvas.height(), canvas.width(), y, x, text, kWhite, nullptr, scale);
    int64_t ink = 0, min_x = canvas.width(), max_x = -1, min_y = canvas.height(), max_y = -1;
    for (int64_t py = 0; py < canvas.height(); ++py)
      for (int64_t px = 0; px < canvas.width(); ++px)
        if (canvas.at(py, px) == kWhite)
          ++ink, min_x = std::min(min_x, px), max_x = std::max(max_x, px), min_y = std::min(min_y, py),
                 max_y = std::max(max_y, py);
    BOOST_TEST(ink > 0);
    BOOST_TEST(min_y >= y);
    BOOST_TEST(max_y < y + h);
    BOOST_TEST(min_x == x);  // the T's bar starts at the left edge of its cell
    BOOST_TEST(max_x < x + w);
    BOOST_TEST(max_x >= x + w - kGlyphCellWidth * scale);  // the '?' is drawn
  }
}

BOOST_AUTO_TEST_CASE(background_fills_the_text_block_and_nothing_else) {
  Canvas canvas(20, 30, kRed);
  const std::string text = "dog";
  draw_text(canvas.data(), 20, 30, 4, 6, text, kWhite, &kBlue);
  const int64_t w = text_width(text), h = text_height();
  for (int64_t y = 0; y < 20; ++y)
    for (int64_t x = 0; x < 30; ++x) {
      const bool inside = y >= 4 && y < 4 + h && x >= 6 && x < 6 + w;
      const Color c = canvas.at(y, x);
      if (inside ? !(c == kWhite || c == kBlue) : !(c == kRed)) BOOST_ERROR("pixel (" << y << ", " << x << ") wrong");
    }
  BOOST_TEST(canvas.count(kWhite) > 0);
  BOOST_TEST(canvas.count(kWhite) + canvas.count(kBlue) == w * h);
  BOOST_TEST(canvas.guards_intact());
}

BOOST_AUTO_TEST_CASE(scale_two_is_scale_one_upsampled) {
  const std::string text = "Bag 7";
  Canvas small(text_height(1), text_width(text, 1)), big(text_height(2), text_width(text, 2));
  draw_text(small.data(), small.height(), small.width(), 0, 0, text, kWhite, &kBlue, 1);
  draw_text(big.data(), big.height(), big.width(), 0, 0, text, kWhite, &kBlue, 2);
  for (int64_t y = 0; y < big.height(); ++y)
    for (int64_t x = 0; x < big.width(); ++x)
      if (!(big.at(y, x) == small.at(y / 2, x / 2))) BOOST_ERROR("pixel (" << y << ", " << x << ") differs");
  BOOST_TEST(big.guards_intact());
}

BOOST_AUTO_TEST_CASE(text_clips_at_every_edge_as_a_crop_of_a_larger_canvas) {
  // Drawn into a 9x14 image at (y, x), text must equal the same text drawn into a canvas with a
  // margin of 40 around it at (y + 40, x + 40), cropped back to the image.
  const int64_t height = 9, width = 14, margin = 40;
  for (int scale : {1, 2})
    for (int64_t y : {-12, -3, 0, 4, 8, 9, 20})
      for (int64_t x : {-30, -7, 0, 5, 13, 14, 30}) {
        Canvas image(height, width, kRed), large(height + 2 * margin, width + 2 * margin, kRed);
        draw_text(image.data(), height, width, y, x, "x?Z", kWhite, &kBlue, scale);
        draw_text(large.data(), large.height(), large.width(), y + margin, x + margin, "x?Z", kWhite, &kBlue, scale);
        BOOST_TEST_CONTEXT("text at (" << y << ", " << x << ") scale " << scale) {
          BOOST_TEST(image.guards_intact());
          for (int64_t py = 0; py < height; ++py)
            for (int64_t px = 0; px < width; ++px)
              if (!(image.at(py, px) == large.at(py + margin, px + margin))) BOOST_ERROR("pixel differs");
        }
      }
}

BOOST_AUTO_TEST_CASE(characters_without_a_glyph_draw_as_one_box_each) {
  const std::vector<bool> box = glyph_bitmap("\x01");
  BOOST_TEST(any_ink(box));
  BOOST_TEST(glyph_bitmap("\x7f") == box);
  BOOST_TEST(glyph_bitmap("\xc3\xa9") == box);  // é: two bytes, one character
  BOOST_TEST(text_width("caf\xc3\xa9") == 4 * kGlyphCellWidth);
  for (int c = 32; c <= 126; ++c) BOOST_TEST((glyph_bitmap(std::string(1, char(c))) != box));
  Canvas canvas(8, 6);
  BOOST_CHECK_THROW(draw_text(canvas.data(), 8, 6, 0, 0, "a", kWhite, nullptr, 0), Error);
  BOOST_CHECK_THROW(text_width("a", 0), Error);
}

BOOST_AUTO_TEST_CASE(zoom_repeats_each_pixel_and_makes_rgb) {
  const std::vector<uint8_t> gray{1, 2, 3, 4, 5, 6};  // 2x3
  const std::vector<uint8_t> out = to_rgb_zoomed(gray.data(), 2, 3, 1, 3);
  BOOST_REQUIRE(out.size() == size_t(6 * 9 * 3));
  for (int64_t y = 0; y < 6; ++y)
    for (int64_t x = 0; x < 9; ++x)
      for (int64_t c = 0; c < 3; ++c) BOOST_TEST(out[size_t((y * 9 + x) * 3 + c)] == gray[size_t(y / 3 * 3 + x / 3)]);

  const std::vector<uint8_t> rgba{10, 20, 30, 99, 40, 50, 60, 99};  // 1x2, alpha dropped
  BOOST_TEST(to_rgb_zoomed(rgba.data(), 1, 2, 4, 1) == (std::vector<uint8_t>{10, 20, 30, 40, 50, 60}));
  const std::vector<uint8_t> gray_alpha{7, 0, 8, 255};  // 1x2
  BOOST_TEST(to_rgb_zoomed(gray_alpha.data(), 1, 2, 2, 1) == (std::vector<uint8_t>{7, 7, 7, 8, 8, 8}));
  const std::vector<uint8_t> rgb{1, 2, 3, 4, 5, 6};  // 2x1
  BOOST_TEST(to_rgb_zoomed(rgb.data(), 2, 1, 3, 2) ==
             (std::vector<uint8_t>{1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6, 4, 5, 6, 4, 5, 6}));
  BOOST_CHECK_THROW(to_rgb_zoomed(rgb.data(), 2, 1, 5, 1), Error);
  BOOST_CHECK_THROW(to_rgb_zoomed(rgb.data(), 2, 1, 3, 0), Error);
}

BOOST_AUTO_TEST_CASE(palette_colours_are_bright_distinct_and_fixed) {
  for (int64_t i = 0; i < 64; ++i) {
    const Color c = palette_color(i);
    BOOST_TEST(std::max({c.r, c.g, c.b}) == 255, "colour " << i << " is not bright");
    BOOST_TEST(std::min({c.r, c.g, c.b}) == 51, "colour " << i << " is not saturated");
  }
  // The first eight (the classes of a small scene set) are far apart: L1 distance over 100.
  for (int64_t i = 0; i < 8; ++i)
    for (int64_t j = 0; j < i; ++j) {
      const Color a = palette_color(i), b = palette_color(j);
      BOOST_TEST(std::abs(a.r - b.r) + std::abs(a.g - b.g) + std::abs(a.b - b.b) > 100, i << " near " << j);
    }
  // Fixed across machines and releases: recorded colours of the first three classes.
  BOOST_TEST(palette_color(0) == (Color{255, 51, 51}));
  BOOST_TEST(palette_color(1) == (Color{51, 111, 255}));
  BOOST_TEST(palette_color(2) == (Color{171, 255, 51}));
}

BOOST_AUTO_TEST_SUITE_END()
