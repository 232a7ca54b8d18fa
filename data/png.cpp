#include "data/png.h"

#include <png.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include "autograd/error.h"
#include "data/hdf5_util.h"

namespace tessera::data {
namespace {

// libpng reports errors by longjmp unless given a handler; ours throws out of C code through
// libpng's frames, which is not allowed, so errors set a flag and longjmp as libpng expects.
struct PngWriteState {
  std::string message;
};

void on_png_error(png_structp png, png_const_charp message) {
  static_cast<PngWriteState*>(png_get_error_ptr(png))->message = message;
  png_longjmp(png, 1);
}
void on_png_warning(png_structp, png_const_charp) {}

bool write_png_file(FILE* f, const uint8_t* pixels, int64_t height, int64_t width, int64_t channels,
                    std::string& message) {
  PngWriteState state;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &state, on_png_error, on_png_warning);
  if (!png) return message = "out of memory", false;
  png_infop info = png_create_info_struct(png);
  // Everything touched after setjmp that must survive the longjmp is declared before it.
  std::vector<png_const_bytep> rows(static_cast<size_t>(height));
  for (int64_t y = 0; y < height; ++y) rows[size_t(y)] = pixels + y * width * channels;
  if (!info || setjmp(png_jmpbuf(png))) {
    message = state.message.empty() ? "out of memory" : state.message;
    png_destroy_write_struct(&png, &info);
    return false;
  }
  static const int color_types[] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                    PNG_COLOR_TYPE_RGB_ALPHA};
  png_init_io(png, f);
  png_set_IHDR(png, info, png_uint_32(width), png_uint_32(height), 8, color_types[channels - 1], PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_rows(png, const_cast<png_bytepp>(rows.data()), png_uint_32(height));
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return true;
}

}  // namespace

void write_png(const std::string& path, const uint8_t* pixels, int64_t height, int64_t width, int64_t channels) {
  if (height < 1 || width < 1 || height > (1 << 24) || width > (1 << 24))
    fail("write_png '{}': cannot write an image of {}x{}", path, height, width);
  if (channels < 1 || channels > 4) fail("write_png '{}': {} channels, expected 1 to 4", path, channels);
  const std::string temp = path + ".tmp-" + std::to_string(getpid());
  FILE* f = std::fopen(temp.c_str(), "wb");
  if (!f)
    fail("write_png '{}': cannot create '{}'{}", path, temp,
         h5::disk_full_note(path).empty() ? " (does the folder exist and is it writable?)" : h5::disk_full_note(path));
  std::string message;
  const bool ok = write_png_file(f, pixels, height, width, channels, message);
  const bool closed = std::fclose(f) == 0;
  std::error_code ec;
  if (!ok || !closed) {
    std::filesystem::remove(temp, ec);
    fail("write_png '{}': {}{}", path, ok ? "cannot write the file" : message, h5::disk_full_note(path));
  }
  std::filesystem::rename(temp, path, ec);
  if (ec) {
    std::filesystem::remove(temp, ec);
    fail("write_png '{}': cannot move the file into place: {}", path, ec.message());
  }
}

std::string encode_png(const uint8_t* pixels, int64_t height, int64_t width, int64_t channels) {
  if (height < 1 || width < 1 || height > (1 << 24) || width > (1 << 24))
    fail("encode_png: cannot encode an image of {}x{}", height, width);
  if (channels < 1 || channels > 4) fail("encode_png: {} channels, expected 1 to 4", channels);
  char* buffer = nullptr;
  size_t size = 0;
  FILE* f = open_memstream(&buffer, &size);
  if (!f) fail("encode_png: out of memory");
  std::string message;
  const bool ok = write_png_file(f, pixels, height, width, channels, message);
  std::fclose(f);
  std::string out = ok ? std::string(buffer, size) : std::string();
  std::free(buffer);
  if (!ok) fail("encode_png: {}", message);
  return out;
}

void write_image_grid(const std::string& path, const uint8_t* images, int64_t n, int64_t height, int64_t width,
                      int64_t channels, int64_t nrow, int64_t padding) {
  if (n < 1) fail("write_image_grid '{}': no images", path);
  if (nrow < 1 || padding < 0) fail("write_image_grid '{}': nrow {} and padding {} are invalid", path, nrow, padding);
  const int64_t cols = std::min(nrow, n), rows = (n + cols - 1) / cols;
  const int64_t grid_h = rows * height + (rows + 1) * padding, grid_w = cols * width + (cols + 1) * padding;
  std::vector<uint8_t> grid(size_t(grid_h * grid_w * channels), 0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t top = padding + (i / cols) * (height + padding), left = padding + (i % cols) * (width + padding);
    for (int64_t y = 0; y < height; ++y) {
      const uint8_t* src = images + (i * height + y) * width * channels;
      std::copy(src, src + width * channels, grid.data() + ((top + y) * grid_w + left) * channels);
    }
  }
  write_png(path, grid.data(), grid_h, grid_w, channels);
}

void refuse_non_png_output(const std::string& path, const std::string& option) {
  if (!std::filesystem::exists(path)) return;
  std::ifstream in(path, std::ios::binary);
  char signature[8] = {};
  in.read(signature, 8);
  if (std::string(signature, 8) != "\x89PNG\r\n\x1a\n")
    fail("{} {} exists and is not a PNG; it is not replaced (give another path or remove it)", option, path);
}

}  // namespace tessera::data
