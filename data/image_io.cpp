#include "data/image_io.h"

// jpeglib.h needs FILE and size_t declared first.
#include <cstdio>
#include <cstring>
#include <csetjmp>
#include <jpeglib.h>
#include <png.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "autograd/error.h"

namespace tessera::data {
namespace {

// The most pixels an image may have: a header may declare 65500 x 65500 in a few bytes, and the
// importer would allocate gigabytes for it before reading a pixel.
constexpr int64_t kMaxImagePixels = int64_t(1) << 27;  // 134 M pixels, e.g. 11585 x 11585

void check_pixels(const std::string& path, int64_t height, int64_t width) {
  if (height < 1 || width < 1 || height > kMaxImagePixels / width)
    fail("image '{}': its header declares {} x {} pixels, more than the {} an image may have here (damaged, or not a "
         "photo)", path, width, height, kMaxImagePixels);
}

Image read_png(const std::string& path, int64_t channels) {
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&png, path.c_str()))
    fail("image '{}': cannot read it as PNG: {}", path, png.message);
  if (int64_t(png.height) < 1 || int64_t(png.width) < 1 || int64_t(png.height) > kMaxImagePixels / int64_t(png.width)) {
    png_image_free(&png);
    check_pixels(path, png.height, png.width);
  }
  png.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  Image image{int64_t(png.height), int64_t(png.width), channels, {}};
  image.pixels.resize(PNG_IMAGE_SIZE(png));
  if (!png_image_finish_read(&png, nullptr, image.pixels.data(), 0, nullptr)) {
    const std::string message = png.message;
    png_image_free(&png);
    fail("image '{}': corrupt PNG: {}", path, message);
  }
  // libpng reads past some damage with a warning (a bad CRC, a truncated stream): an error here,
  // since the pixels it made up would enter the data set.
  if (png.warning_or_error & PNG_IMAGE_WARNING) fail("image '{}': damaged PNG: {}", path, png.message);
  return image;
}

struct JpegError {
  jpeg_error_mgr manager;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_jpeg_error(j_common_ptr info) {
  JpegError* err = reinterpret_cast<JpegError*>(info->err);
  info->err->format_message(info, err->message);
  std::longjmp(err->jump, 1);
}

// libjpeg's warnings (level -1) mean damage it papered over — "Premature end of JPEG file" fills
// the rest with grey: errors here. Trace messages (level >= 0) stay silent.
void on_jpeg_message(j_common_ptr info, int level) {
  if (level < 0) on_jpeg_error(info);
}

// Decodes into `image`; returns false with err.message set on failure. Kept free of C++
// objects with destructors between setjmp and longjmp.
bool decode_jpeg(FILE* f, int64_t channels, Image& image, JpegError& err) {
  jpeg_decompress_struct info;
  info.err = jpeg_std_error(&err.manager);
  err.manager.error_exit = on_jpeg_error;
  err.manager.emit_message = on_jpeg_message;
  err.message[0] = 0;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&info);
    return false;
  }
  jpeg_create_decompress(&info);
  jpeg_stdio_src(&info, f);
  jpeg_read_header(&info, TRUE);
  if (info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK) {
    std::snprintf(err.message, sizeof err.message, "CMYK JPEGs are not supported; convert it to RGB");
    jpeg_destroy_decompress(&info);
    return false;
  }
  if (int64_t(info.image_height) > kMaxImagePixels / std::max<int64_t>(1, int64_t(info.image_width))) {
    std::snprintf(err.message, sizeof err.message, "its header declares %u x %u pixels, more than the %lld an image may "
                  "have here", unsigned(info.image_width), unsigned(info.image_height), (long long)kMaxImagePixels);
    jpeg_destroy_decompress(&info);
    return false;
  }
  info.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&info);
  image.height = info.output_height, image.width = info.output_width, image.channels = channels;
  image.pixels.resize(size_t(image.height * image.width * channels));
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = image.pixels.data() + size_t(info.output_scanline) * size_t(image.width * channels);
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  return true;
}

Image read_jpeg(const std::string& path, int64_t channels) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail("image '{}': cannot open it", path);
  Image image;
  JpegError err;
  const bool ok = decode_jpeg(f, channels, image, err);
  std::fclose(f);
  if (!ok) fail("image '{}': corrupt JPEG: {}", path, err.message);
  return image;
}

// Weights of the antialiased triangle filter for one axis: for each output position, the first
// source index and the normalised weights of the source samples it averages.
struct Taps {
  std::vector<int64_t> first;
  std::vector<std::vector<float>> weights;
};

Taps make_taps(int64_t in, int64_t out) {
  const double scale = double(in) / double(out);
  const double support = std::max(scale, 1.0);  // the filter's half-width, in source pixels
  Taps taps;
  for (int64_t o = 0; o < out; ++o) {
    const double center = (double(o) + 0.5) * scale;
    const int64_t lo = std::max<int64_t>(0, int64_t(std::floor(center - support)));
    const int64_t hi = std::min<int64_t>(in, int64_t(std::ceil(center + support)));
    std::vector<float> w;
    double total = 0;
    for (int64_t i = lo; i < hi; ++i) {
      const double d = std::abs((double(i) + 0.5 - center) / support);
      const double v = std::max(0.0, 1.0 - d);
      w.push_back(float(v));
      total += v;
    }
    if (total <= 0) {  // cannot happen with support >= 1, kept for safety
      w.assign(size_t(hi - lo), 0.f);
      w[0] = 1.f, total = 1;
    }
    for (float& v : w) v = float(v / total);
    taps.first.push_back(lo);
    taps.weights.push_back(std::move(w));
  }
  return taps;
}

}  // namespace

Image read_image(const std::string& path, int64_t channels) {
  if (channels != 1 && channels != 3) fail("image '{}': can decode to 1 or 3 channels, not {}", path, channels);
  unsigned char magic[8] = {0};
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("image '{}': cannot open it", path);
  in.read(reinterpret_cast<char*>(magic), sizeof magic);
  if (in.gcount() >= 8 && png_sig_cmp(magic, 0, 8) == 0) return read_png(path, channels);
  if (in.gcount() >= 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF) return read_jpeg(path, channels);
  fail("image '{}': neither PNG nor JPEG (unknown signature)", path);
}

Image resize(const Image& image, int64_t out_h, int64_t out_w) {
  if (out_h < 1 || out_w < 1) fail("resize: invalid size {}x{}", out_h, out_w);
  const int64_t C = image.channels;
  const Taps rows = make_taps(image.height, out_h), cols = make_taps(image.width, out_w);
  // Horizontal pass into floats, then vertical pass with rounding.
  std::vector<float> mid(size_t(image.height * out_w * C));
  for (int64_t y = 0; y < image.height; ++y)
    for (int64_t x = 0; x < out_w; ++x)
      for (int64_t c = 0; c < C; ++c) {
        float acc = 0;
        const auto& w = cols.weights[size_t(x)];
        for (size_t k = 0; k < w.size(); ++k)
          acc += w[k] * image.pixels[size_t(((y * image.width) + cols.first[size_t(x)] + int64_t(k)) * C + c)];
        mid[size_t((y * out_w + x) * C + c)] = acc;
      }
  Image out{out_h, out_w, C, std::vector<uint8_t>(size_t(out_h * out_w * C))};
  for (int64_t y = 0; y < out_h; ++y) {
    const auto& w = rows.weights[size_t(y)];
    for (int64_t x = 0; x < out_w; ++x)
      for (int64_t c = 0; c < C; ++c) {
        float acc = 0;
        for (size_t k = 0; k < w.size(); ++k) acc += w[k] * mid[size_t(((rows.first[size_t(y)] + int64_t(k)) * out_w + x) * C + c)];
        out.pixels[size_t((y * out_w + x) * C + c)] = uint8_t(std::clamp(std::lround(acc), 0L, 255L));
      }
  }
  return out;
}

Image resize_center_crop(const Image& image, int64_t size) {
  if (size < 1) fail("resize_center_crop: invalid size {}", size);
  const double scale = double(size) / double(std::min(image.height, image.width));
  const int64_t h = std::max(size, int64_t(std::lround(image.height * scale)));
  const int64_t w = std::max(size, int64_t(std::lround(image.width * scale)));
  const Image scaled = (h == image.height && w == image.width) ? image : resize(image, h, w);
  const int64_t top = (h - size) / 2, left = (w - size) / 2, C = image.channels;
  Image out{size, size, C, std::vector<uint8_t>(size_t(size * size * C))};
  for (int64_t y = 0; y < size; ++y)
    std::copy_n(scaled.pixels.data() + ((top + y) * w + left) * C, size * C, out.pixels.data() + y * size * C);
  return out;
}

std::vector<uint8_t> to_pixels(const Tensor& images) {
  const Tensor nhwc = images.permute({0, 2, 3, 1}).contiguous();
  const float* p = nhwc.data<float>();
  std::vector<uint8_t> out(size_t(nhwc.numel()));
  for (size_t i = 0; i < out.size(); ++i) out[i] = uint8_t(std::lround(std::clamp(p[i], 0.0f, 1.0f) * 255.0f));
  return out;
}

Tensor from_pixels(const uint8_t* pixels, int64_t n, int64_t height, int64_t width, int64_t channels) {
  Tensor nhwc = Tensor::empty({n, height, width, channels});
  float* p = nhwc.data<float>();
  for (int64_t i = 0; i < nhwc.numel(); ++i) p[i] = float(pixels[i]) / 255.0f;
  return nhwc.permute({0, 3, 1, 2}).contiguous();
}

}  // namespace tessera::data
