#pragma once
// Shared helpers for the data tests: a scratch folder and small synthetic datasets.
#include <cmath>
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

// Labelled 28x28x1 items for scene tests, one blob each, in the place of Fashion-MNIST: class 0 a
// wide bar, 1 a tall bar, 2 a disc with a faint rim, 3 a triangle. Sizes and positions vary with
// the index and the borders stay zero, so tight crops matter. Like Fashion-MNIST's faint edges,
// some tall bars have a faint speck beside them that shrinking fades to 0. Every blob pixel but
// the rim and the speck has the value `brightness`, so a test can tell which items file a scene
// was made from.
inline const std::vector<std::string>& scene_item_classes() {
  static const std::vector<std::string> names{"Bag", "Coat", "Sneaker", "Dress"};
  return names;
}
inline constexpr uint8_t kSceneItemRim = 6;

inline void write_scene_items(const std::string& path, int64_t n, uint8_t brightness) {
  constexpr int64_t side = 28;
  std::vector<uint8_t> images(static_cast<size_t>(n * side * side), 0);
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t cls = i % 4, v = i / 4;  // v: the variant within the class
    uint8_t* image = images.data() + i * side * side;
    auto set = [&](int64_t y, int64_t x, uint8_t value) { image[y * side + x] = value; };
    const int64_t oy = 2 + v % 3, ox = 3 + (v * 2) % 5;  // zero rows and columns before the blob
    if (cls == 0 || cls == 1) {
      const int64_t along = 16 + v % 4, across = 7 + v % 2;  // at least 2:1
      const int64_t h = cls == 0 ? across : along, w = cls == 0 ? along : across;
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) set(oy + y, ox + x, brightness);
      if (cls == 1 && v % 2 == 1) set(oy + h - 1, ox + w + 2, 1);  // the speck
    } else if (cls == 2) {
      const double r = 6 + v % 3, c = r + 1;  // the rim is a ring one pixel wide
      for (int64_t y = 0; y <= int64_t(2 * c); ++y)
        for (int64_t x = 0; x <= int64_t(2 * c); ++x) {
          const double d = std::hypot(double(y) - c, double(x) - c);
          if (d <= r) set(oy + y, ox + x, brightness);
          else if (d <= r + 1) set(oy + y, ox + x, kSceneItemRim);
        }
    } else {
      const int64_t h = 12 + v % 3, half = 7;
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = -half; x <= half; ++x)
          if (std::abs(x) * h <= (y + 1) * half) set(oy + y, ox + half + x, brightness);
    }
    labels.push_back(cls);
  }
  DatasetWriter writer(path, side, side, 1, scene_item_classes());
  writer.append(images.data(), n, labels.data());
  writer.close();
}

// dir/train.h5 and dir/test.h5 as `tessera data import fashion-mnist` would write them, with
// blobs of different brightness in the two splits.
inline void write_scene_items_dir(const std::filesystem::path& dir, int64_t train, int64_t test,
                                  uint8_t train_brightness = 120, uint8_t test_brightness = 250) {
  std::filesystem::create_directories(dir);
  write_scene_items((dir / "train.h5").string(), train, train_brightness);
  write_scene_items((dir / "test.h5").string(), test, test_brightness);
}

}  // namespace tessera::data::testing
