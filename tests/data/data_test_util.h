#pragma once
// Shared helpers for the data tests: a scratch folder and small synthetic datasets.
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace tessera::data::testing {

// A fresh folder under /tmp, removed with everything in it when the object goes.
class TempDir {
 public:
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "tessera-data-XXXXXX").string();
    if (!mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Pixel values that differ between images and positions, so any mix-up shows.
inline uint8_t pattern_pixel(int64_t n, int64_t y, int64_t x, int64_t c) {
  return uint8_t((n * 37 + y * 11 + x * 5 + c * 3 + (n * y) % 7) % 256);
}

inline std::vector<uint8_t> pattern_images(int64_t n, int64_t h, int64_t w, int64_t c) {
  std::vector<uint8_t> v(static_cast<size_t>(n * h * w * c));
  size_t k = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        for (int64_t ch = 0; ch < c; ++ch) v[k++] = pattern_pixel(i, y, x, ch);
  return v;
}

// A labelled dataset of n pattern images; label of image i is i % classes; optional captions.
inline void write_pattern_dataset(const std::string& path, int64_t n, int64_t h, int64_t w, int64_t c,
                                  int64_t classes = 3, bool captions = false) {
  std::vector<std::string> names;
  for (int64_t k = 0; k < classes; ++k) names.push_back("class" + std::to_string(k));
  DatasetWriter writer(path, h, w, c, names, captions);
  const std::vector<uint8_t> images = pattern_images(n, h, w, c);
  std::vector<int64_t> labels;
  std::vector<std::string> texts;
  for (int64_t i = 0; i < n; ++i) labels.push_back(classes ? i % classes : 0), texts.push_back("caption " + std::to_string(i));
  // Two appends, to exercise growing the datasets.
  const int64_t first = n / 2;
  std::vector<std::string> t1(texts.begin(), texts.begin() + first), t2(texts.begin() + first, texts.end());
  writer.append(images.data(), first, classes ? labels.data() : nullptr, captions ? &t1 : nullptr);
  writer.append(images.data() + first * h * w * c, n - first, classes ? labels.data() + first : nullptr,
                captions ? &t2 : nullptr);
  writer.close();
}

}  // namespace tessera::data::testing
