// Scene data sets (data/scene_import.h, and the scene parts of the reader, verify_dataset and the
// loader): made from small synthetic items, checked for determinism, for ground truth that is
// true of the pixels, for refusals that name the option or the scene at fault, and for a loader
// whose flipped samples have flipped boxes and mirrored text.
#include <hdf5.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <set>

#include "autograd/error.h"
#include "data/dataset.h"
#include "data/hdf5_util.h"
#include "data/import.h"
#include "data/loader.h"
#include "data/scene_import.h"
#include "data/scene_text.h"
#include "data/text_tokenizer.h"
#include "data_test_util.h"

using namespace tessera;
using namespace tessera::data;
using namespace tessera::data::testing;
namespace fs = std::filesystem;

namespace {

constexpr uint8_t kTrainBrightness = 120, kTestBrightness = 250;
constexpr int64_t kTrainScenes = 300, kTestScenes = 100;

SceneOptions small_scenes(uint64_t seed = 5) {
  SceneOptions o;
  o.size = 48;
  o.min_objects = 1, o.max_objects = 4;
  o.min_scale = 10, o.max_scale = 20;
  o.max_iou = 0.2;
  o.seed = seed;
  return o;
}

std::string file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Items in dir/items, scenes (train and test) in dir/scenes.
struct Scenes {
  TempDir dir;
  fs::path items = dir.path() / "items", out = dir.path() / "scenes";
  SceneOptions options = small_scenes();
  Scenes() {
    write_scene_items_dir(items, 32, 16, kTrainBrightness, kTestBrightness);
    import_scenes(items.string(), out.string(), options, kTrainScenes, kTestScenes, 2);
  }
  std::string train() const { return (out / "train.h5").string(); }
  std::string test() const { return (out / "test.h5").string(); }
};

std::vector<uint8_t> image_of(const Dataset& ds, int64_t i) {
  std::vector<uint8_t> pixels(size_t(ds.image_bytes()));
  ds.read_images({i}, pixels.data());
  return pixels;
}

std::vector<Box> boxes_of(const ObjectsView& v) {
  std::vector<Box> boxes;
  for (int64_t k = 0; k < v.count; ++k) boxes.push_back({v.boxes[4 * k], v.boxes[4 * k + 1], v.boxes[4 * k + 2], v.boxes[4 * k + 3]});
  return boxes;
}

// "" if `boxes` are the tight boxes of the non-zero pixels of a size x size image composited
// with max: nothing lies outside their union, and every edge row and column of each box holds a
// non-zero pixel inside the box. Otherwise what is wrong.
std::string tight_box_error(const std::vector<uint8_t>& image, int64_t size, const std::vector<Box>& boxes) {
  auto inside = [&](const Box& b, int64_t y, int64_t x) { return y >= b.y_min && y < b.y_max && x >= b.x_min && x < b.x_max; };
  for (int64_t y = 0; y < size; ++y)
    for (int64_t x = 0; x < size; ++x)
      if (image[size_t(y * size + x)] > 0 &&
          std::none_of(boxes.begin(), boxes.end(), [&](const Box& b) { return inside(b, y, x); }))
        return fmt::format("pixel ({}, {}) is {} outside every box", y, x, image[size_t(y * size + x)]);
  for (size_t k = 0; k < boxes.size(); ++k) {
    const Box& b = boxes[k];
    const int64_t y0 = int64_t(b.y_min), x0 = int64_t(b.x_min), y1 = int64_t(b.y_max), x1 = int64_t(b.x_max);
    if (float(y0) != b.y_min || float(x0) != b.x_min || float(y1) != b.y_max || float(x1) != b.x_max)
      return fmt::format("box {} has edges off the pixel grid", k);
    if (y0 < 0 || x0 < 0 || y1 > size || x1 > size || y0 >= y1 || x0 >= x1)
      return fmt::format("box {} ({}, {}, {}, {}) is empty or outside the {}x{} image", k, y0, x0, y1, x1, size, size);
    auto row_lit = [&](int64_t y) {
      for (int64_t x = x0; x < x1; ++x)
        if (image[size_t(y * size + x)] > 0) return true;
      return false;
    };
    auto column_lit = [&](int64_t x) {
      for (int64_t y = y0; y < y1; ++y)
        if (image[size_t(y * size + x)] > 0) return true;
      return false;
    };
    if (!row_lit(y0) || !row_lit(y1 - 1) || !column_lit(x0) || !column_lit(x1 - 1))
      return fmt::format("box {} ({}, {}, {}, {}) is not tight: an edge row or column is black", k, y0, x0, y1, x1);
  }
  return "";
}

// Every error message of `run` must contain each of `parts`.
template <class F>
void expect_error(F run, const std::vector<std::string>& parts) {
  try {
    run();
    BOOST_ERROR("expected an Error containing '" << parts.front() << "'");
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const std::string& part : parts)
      BOOST_TEST(message.find(part) != std::string::npos, "message '" << message << "' lacks '" << part << "'");
  }
}

// Overwrites one hyperslab of a dataset in place with the raw HDF5 API, as a corrupting tool would.
void overwrite(const std::string& path, const char* name, const std::vector<hsize_t>& offset,
               const std::vector<hsize_t>& count, hid_t memory_type, const void* data) {
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  BOOST_REQUIRE(file >= 0);
  const hid_t dataset = H5Dopen2(file, name, H5P_DEFAULT);
  BOOST_REQUIRE(dataset >= 0);
  const hid_t file_space = H5Dget_space(dataset);
  const hid_t memory_space = H5Screate_simple(int(count.size()), count.data(), nullptr);
  BOOST_REQUIRE(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, offset.data(), nullptr, count.data(), nullptr) >= 0);
  BOOST_REQUIRE(H5Dwrite(dataset, memory_type, memory_space, file_space, H5P_DEFAULT, data) >= 0);
  H5Sclose(memory_space), H5Sclose(file_space), H5Dclose(dataset), H5Fclose(file);
}

void overwrite_string(const std::string& path, const char* name, const std::vector<hsize_t>& offset, const char* text) {
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  overwrite(path, name, offset, std::vector<hsize_t>(offset.size(), 1), type, &text);
  H5Tclose(type);
}

// The file type of a dataset equals `expected` (e.g. H5T_STD_I32LE).
bool stored_as(const std::string& path, const char* name, hid_t expected) {
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t dataset = H5Dopen2(file, name, H5P_DEFAULT);
  const hid_t type = H5Dget_type(dataset);
  const bool same = H5Tequal(type, expected) > 0;
  H5Tclose(type), H5Dclose(dataset), H5Fclose(file);
  return same;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The dimensions of a dataset, read with the raw HDF5 API.
std::vector<hsize_t> stored_dims(const std::string& path, const char* name) {
  const h5::Handle file = h5::open_for_reading(path);
  const h5::Handle dataset(H5Dopen2(file.get(), name, H5P_DEFAULT));
  return h5::dims_of(dataset.get());
}

int64_t int_attribute(const std::string& path, const char* name) {
  const h5::Handle file = h5::open_for_reading(path);
  if (H5Aexists(file.get(), name) <= 0) return -1;
  const h5::Handle attribute(H5Aopen(file.get(), name, H5P_DEFAULT));
  int64_t value = -1;
  H5Aread(attribute.get(), H5T_NATIVE_INT64, &value);
  return value;
}

bool has_link(const std::string& path, const char* name) {
  const h5::Handle file = h5::open_for_reading(path);
  return h5::link_exists(file.get(), name);
}

// 64-bit FNV-1a of a file's bytes.
uint64_t fnv1a(const std::string& bytes) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  return h;
}

// "in frame K, <rest>" -> (K, rest); (0, text) without the prefix.
std::pair<int64_t, std::string> frame_prefix(const std::string& text) {
  const std::string prefix = "in frame ";
  const size_t comma = text.find(", ");
  if (text.rfind(prefix, 0) != 0 || comma == std::string::npos) return {0, text};
  return {std::stoll(text.substr(prefix.size(), comma - prefix.size())), text.substr(comma + 2)};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(scenes)

// ---------------------------------------------------------------------------------------------
// Determinism

BOOST_AUTO_TEST_CASE(same_arguments_same_bytes_at_any_thread_count) {
  TempDir dir;
  write_scene_items_dir(dir.path() / "items", 32, 16);
  const std::string items = (dir.path() / "items").string();
  const SceneOptions options = small_scenes();
  import_scenes(items, dir.file("one"), options, 200, 50, 1);
  import_scenes(items, dir.file("two"), options, 200, 50, 2);
  for (const char* split : {"train.h5", "test.h5"}) {
    const std::string a = file_bytes(dir.path() / "one" / split), b = file_bytes(dir.path() / "two" / split);
    BOOST_TEST(!a.empty());
    BOOST_TEST((a == b), split << " differs between 1 and 2 threads");
  }
  // An earlier import's output is replaced without --overwrite (it is marked written_by), to the same bytes.
  BOOST_TEST(h5::written_by(dir.file("one/train.h5")) == kImportCommand);
  import_scenes(items, dir.file("one"), options, 200, 50, 2);
  BOOST_TEST((file_bytes(dir.path() / "one" / "train.h5") == file_bytes(dir.path() / "two" / "train.h5")));

  // Another seed, other scenes.
  import_scenes(items, dir.file("seed"), small_scenes(6), 200, 50, 2);
  BOOST_TEST((file_bytes(dir.path() / "seed" / "train.h5") != file_bytes(dir.path() / "one" / "train.h5")));
  const auto one = Dataset::open(dir.file("one/train.h5")), seed = Dataset::open(dir.file("seed/train.h5"));
  int64_t same_images = 0;
  for (int64_t i = 0; i < 200; ++i) same_images += image_of(*one, i) == image_of(*seed, i);
  BOOST_TEST(same_images < 5);

  // Scene i does not depend on how many scenes are made.
  import_scenes(items, dir.file("prefix"), options, 70, 20, 2);
  for (const char* split : {"train.h5", "test.h5"}) {
    const auto full = Dataset::open((dir.path() / "one" / split).string());
    const auto prefix = Dataset::open((dir.path() / "prefix" / split).string());
    BOOST_TEST_REQUIRE(prefix->size() == (split == std::string("train.h5") ? 70 : 20));
    for (int64_t i = 0; i < prefix->size(); ++i) {
      BOOST_TEST((image_of(*full, i) == image_of(*prefix, i)), split << " scene " << i);
      const ObjectsView a = full->objects(i), b = prefix->objects(i);
      BOOST_TEST(a.count == b.count);
      BOOST_TEST(std::equal(a.boxes, a.boxes + 4 * options.max_objects, b.boxes));
      BOOST_TEST(std::equal(a.classes, a.classes + options.max_objects, b.classes));
      BOOST_TEST((full->captions(i) == prefix->captions(i)));
      BOOST_TEST(full->swapped_caption(i) == prefix->swapped_caption(i));
      BOOST_TEST((full->questions(i) == prefix->questions(i)));
      BOOST_TEST((full->answers(i) == prefix->answers(i)));
      BOOST_TEST((full->question_types(i) == prefix->question_types(i)));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Schema and ground truth

BOOST_FIXTURE_TEST_CASE(schema_of_a_scenes_file, Scenes) {
  for (const std::string& path : {train(), test()}) {
    const auto ds = Dataset::open(path);
    const DatasetInfo& info = ds->info();
    BOOST_TEST(info.size == (path == train() ? kTrainScenes : kTestScenes));
    BOOST_TEST(info.height == 48);
    BOOST_TEST(info.width == 48);
    BOOST_TEST(info.channels == 1);
    BOOST_TEST(info.has_objects);
    BOOST_TEST(info.max_objects == 4);
    BOOST_TEST((info.object_class_names == scene_item_classes()));
    BOOST_TEST(!info.has_labels);
    BOOST_TEST(info.captions_per_image == kCaptionsPerScene);
    BOOST_TEST(info.has_swapped_captions);
    BOOST_TEST(info.questions_per_image == kQuestionsPerScene);
    BOOST_TEST((info.question_type_names == std::vector<std::string>{"count", "existence", "place", "size"}));
    const SizeWords words = options.size_words();
    BOOST_TEST(info.small_below == words.small_below);
    BOOST_TEST(info.large_above == words.large_above);
    BOOST_TEST(stored_as(path, "images", H5T_STD_U8LE));
    BOOST_TEST(stored_as(path, "objects/boxes", H5T_IEEE_F32LE));
    BOOST_TEST(stored_as(path, "objects/classes", H5T_STD_I32LE));
    BOOST_TEST(stored_as(path, "objects/count", H5T_STD_I32LE));
    BOOST_TEST(stored_as(path, "question_types", H5T_STD_I32LE));
    for (int64_t i = 0; i < info.size; ++i) {
      BOOST_TEST(ds->captions(i).size() == size_t(kCaptionsPerScene));
      BOOST_TEST(ds->answers(i).size() == size_t(kQuestionsPerScene));
      for (int32_t t : ds->question_types(i)) BOOST_TEST((t >= 0 && t < 4));
    }
    BOOST_TEST(verify_dataset(path).empty());
  }
}

BOOST_FIXTURE_TEST_CASE(boxes_are_the_tight_boxes_of_the_pixels, Scenes) {
  const int64_t K = options.max_objects;
  std::set<int64_t> counts;
  float smallest_side = 1e9f, largest_side = 0;
  for (const std::string& path : {train(), test()}) {
    const auto ds = Dataset::open(path);
    for (int64_t i = 0; i < ds->size(); ++i) {
      const ObjectsView v = ds->objects(i);
      counts.insert(v.count);
      BOOST_TEST_REQUIRE((v.count >= options.min_objects && v.count <= options.max_objects), "scene " << i);
      for (int64_t k = 0; k < K; ++k) {
        if (k < v.count) {
          BOOST_TEST((v.classes[k] >= 0 && v.classes[k] < 4), "scene " << i);
        } else {
          BOOST_TEST(v.classes[k] == -1, "scene " << i << " object " << k);
          BOOST_TEST((v.boxes[4 * k] == 0 && v.boxes[4 * k + 1] == 0 && v.boxes[4 * k + 2] == 0 && v.boxes[4 * k + 3] == 0));
        }
      }
      const std::vector<Box> boxes = boxes_of(v);
      const std::string error = tight_box_error(image_of(*ds, i), options.size, boxes);
      BOOST_TEST(error.empty(), path << " scene " << i << ": " << error);
      for (size_t a = 0; a < boxes.size(); ++a) {
        smallest_side = std::min(smallest_side, boxes[a].longer_side());
        largest_side = std::max(largest_side, boxes[a].longer_side());
        for (size_t b = a + 1; b < boxes.size(); ++b)
          BOOST_TEST(intersection_over_union(boxes[a], boxes[b]) <= options.max_iou, "scene " << i);
        // The items' shapes: bags are wide, coats tall (at least 16:11 with a speck), sneakers
        // round; a class that does not belong to its box shows here.
        const Box& box = boxes[a];
        const int32_t cls = v.classes[a];
        if (cls == 0) BOOST_TEST(box.width() >= 1.5f * box.height(), "scene " << i << " object " << a);
        if (cls == 1) BOOST_TEST(box.height() >= 1.3f * box.width(), "scene " << i << " object " << a);
        if (cls == 2) BOOST_TEST(std::abs(box.height() - box.width()) <= 2.f, "scene " << i << " object " << a);
      }
    }
  }
  // Every object count of the range occurs.
  BOOST_TEST((counts == std::set<int64_t>{1, 2, 3, 4}));
  // An item is resized so that its longer side is in the scale range, then cropped again to the
  // pixels the resampling left non-zero: the crop never grows a box and loses at most a pixel
  // on each side of the longer one.
  BOOST_TEST(largest_side <= float(options.max_scale));
  BOOST_TEST_MESSAGE("longer sides of the boxes: " << smallest_side << " to " << largest_side);
  BOOST_TEST(smallest_side >= float(options.min_scale - 2));
  BOOST_TEST(largest_side >= float(options.max_scale - 2));  // the range is used, not just its start
}

BOOST_FIXTURE_TEST_CASE(each_split_uses_only_its_own_items, Scenes) {
  // Train items have blobs of kTrainBrightness, test items of kTestBrightness (resampling only
  // blends them with black, so it never makes a pixel brighter).
  const auto train_set = Dataset::open(train()), test_set = Dataset::open(test());
  for (int64_t i = 0; i < train_set->size(); ++i) {
    const std::vector<uint8_t> image = image_of(*train_set, i);
    BOOST_TEST(*std::max_element(image.begin(), image.end()) == kTrainBrightness, "train scene " << i);
  }
  for (int64_t i = 0; i < test_set->size(); ++i) {
    const std::vector<uint8_t> image = image_of(*test_set, i);
    BOOST_TEST(*std::max_element(image.begin(), image.end()) == kTestBrightness, "test scene " << i);
  }
}

// ---------------------------------------------------------------------------------------------
// Refusals

BOOST_AUTO_TEST_CASE(bad_options_are_refused_by_name_and_write_nothing) {
  TempDir dir;
  write_scene_items_dir(dir.path() / "items", 32, 16);
  const std::string items = (dir.path() / "items").string(), out = dir.file("out");
  struct Case {
    std::function<void(SceneOptions&)> change;
    const char* option;
  };
  const std::vector<Case> cases{
      {[](SceneOptions& o) { o.min_objects = 0; }, "--objects"},
      {[](SceneOptions& o) { o.min_objects = 3, o.max_objects = 2; }, "--objects"},
      {[](SceneOptions& o) { o.max_objects = 17; }, "--objects"},
      {[](SceneOptions& o) { o.min_scale = 1; }, "--scale"},
      {[](SceneOptions& o) { o.min_scale = 20, o.max_scale = 10; }, "--scale"},
      {[](SceneOptions& o) { o.max_scale = 49; }, "--scale"},  // larger than --size 48
      {[](SceneOptions& o) { o.max_iou = -0.1; }, "--max-iou"},
      {[](SceneOptions& o) { o.max_iou = 1.5; }, "--max-iou"},
      {[](SceneOptions& o) { o.max_iou = std::nan(""); }, "--max-iou"},
      {[](SceneOptions& o) { o.size = 7, o.min_scale = 2, o.max_scale = 7; }, "--size"},
      {[](SceneOptions& o) { o.size = 5000; }, "--size"},
  };
  for (const Case& c : cases) {
    SceneOptions o = small_scenes();
    c.change(o);
    expect_error([&] { import_scenes(items, out, o, 10, 10, 1); }, {c.option});
    BOOST_TEST(!fs::exists(out), "a refused " << c.option << " created " << out);
  }
  expect_error([&] { import_scenes(items, out, small_scenes(), -1, 10, 1); }, {"--train"});
  expect_error([&] { import_scenes(items, out, small_scenes(), 0, 0, 1); }, {"nothing to write"});
  expect_error([&] { import_scenes(dir.file("nowhere"), out, small_scenes(), 10, 10, 1); }, {"not found"});
  BOOST_TEST(!fs::exists(out));
}

BOOST_AUTO_TEST_CASE(unsuitable_items_are_refused_and_write_nothing) {
  TempDir dir;
  const fs::path out = dir.path() / "out";
  fs::create_directories(out);
  {
    std::ofstream(out / "train.h5") << "an earlier train.h5";
    std::ofstream(out / "test.h5") << "an earlier test.h5";
  }
  auto untouched = [&] {
    BOOST_TEST((file_bytes(out / "train.h5") == "an earlier train.h5"), "train.h5 was replaced");
    BOOST_TEST((file_bytes(out / "test.h5") == "an earlier test.h5"), "test.h5 was replaced");
    BOOST_TEST(std::distance(fs::directory_iterator(out), fs::directory_iterator()) == 2);  // no temporary left
  };
  // Files another command wrote are kept unless the import is told to overwrite them.
  const fs::path items = dir.path() / "items";
  write_scene_items_dir(items, 8, 8);
  expect_error([&] { import_scenes(items.string(), out.string(), small_scenes(), 10, 10, 1); },
               {"train.h5", "not written by tessera data import", "--overwrite"});
  untouched();
  // With --overwrite, the refusals below still come before anything is replaced.
  // Unlabelled items (train), then items of three channels (test, after good train items): the
  // second split's refusal must not leave the first split written either.
  const fs::path unlabelled = dir.path() / "unlabelled", colour = dir.path() / "colour";
  fs::create_directories(unlabelled), fs::create_directories(colour);
  write_pattern_dataset((unlabelled / "train.h5").string(), 8, 28, 28, 1, 0);
  write_pattern_dataset((unlabelled / "test.h5").string(), 8, 28, 28, 1, 0);
  expect_error([&] { import_scenes(unlabelled.string(), out.string(), small_scenes(), 10, 10, 1, {}, true); }, {"no labels", "train.h5"});
  untouched();
  write_scene_items((colour / "train.h5").string(), 8, 100);
  write_pattern_dataset((colour / "test.h5").string(), 8, 28, 28, 3, 4);
  expect_error([&] { import_scenes(colour.string(), out.string(), small_scenes(), 10, 10, 1, {}, true); }, {"3 channels", "test.h5"});
  untouched();
  // Scenes that cannot be composed (four 14-16 pixel items in a 16x16 image without overlap)
  // fail while being written.
  SceneOptions crowded = small_scenes();
  crowded.size = 16, crowded.min_objects = crowded.max_objects = 4, crowded.min_scale = 14, crowded.max_scale = 16;
  crowded.max_iou = 0;
  expect_error([&] { import_scenes(items.string(), out.string(), crowded, 10, 10, 2, {}, true); }, {"cannot place", "--objects"});
  untouched();
}

// ---------------------------------------------------------------------------------------------
// verify_dataset

BOOST_FIXTURE_TEST_CASE(verify_names_the_scene_and_the_breach, Scenes) {
  BOOST_TEST(verify_dataset(train()).empty());
  BOOST_TEST(verify_dataset(test()).empty());
  const auto ds = Dataset::open(train());
  // A scene with fewer objects than K, for the padding rows.
  int64_t short_scene = -1;
  for (int64_t i = 3; i < ds->size() && short_scene < 0; ++i)
    if (ds->objects(i).count < options.max_objects) short_scene = i;
  BOOST_TEST_REQUIRE(short_scene >= 0);
  const hsize_t s = hsize_t(short_scene), padding = hsize_t(ds->objects(short_scene).count);

  struct Case {
    std::string name;
    std::function<void(const std::string&)> corrupt;
    std::vector<std::string> expected;  // in one breach line
  };
  const float outside = 60.f;  // x_max beyond the 48 pixels
  const int32_t class_9 = 9, class_0 = 0, count_9 = 9, type_7 = 7;
  const std::vector<Case> cases{
      {"box outside", [&](const std::string& p) { overwrite(p, "objects/boxes", {3, 0, 3}, {1, 1, 1}, H5T_NATIVE_FLOAT, &outside); },
       {"scene 3:", "object 0 has box", "x_max 60", "inside the 48x48 image"}},
      {"class out of range", [&](const std::string& p) { overwrite(p, "objects/classes", {3, 0}, {1, 1}, H5T_NATIVE_INT32, &class_9); },
       {"scene 3:", "object 0 has class 9", "expected 0..3"}},
      {"class past count", [&](const std::string& p) { overwrite(p, "objects/classes", {s, padding}, {1, 1}, H5T_NATIVE_INT32, &class_0); },
       {fmt::format("scene {}:", s), fmt::format("objects/classes[{}] is 0", padding), "expected -1"}},
      {"count above K", [&](const std::string& p) { overwrite(p, "objects/count", {3}, {1}, H5T_NATIVE_INT32, &count_9); },
       {"scene 3:", "objects/count is 9", "expected 0..4"}},
      {"empty caption", [&](const std::string& p) { overwrite_string(p, "captions", {3, 1}, ""); },
       {"scene 3:", "empty caption"}},
      {"empty answer", [&](const std::string& p) { overwrite_string(p, "answers", {3, 2}, ""); },
       {"scene 3:", "question 2 or its answer is empty"}},
      {"question type out of range", [&](const std::string& p) { overwrite(p, "question_types", {3, 5}, {1, 1}, H5T_NATIVE_INT32, &type_7); },
       {"scene 3:", "question 5 has type 7", "expected 0..3"}},
  };
  TempDir scratch;
  for (const Case& c : cases) {
    const std::string copy = scratch.file(c.name + ".h5");
    fs::copy_file(train(), copy);
    c.corrupt(copy);
    const std::vector<std::string> breaches = verify_dataset(copy);
    BOOST_TEST(breaches.size() == 1u, c.name << ": " << breaches.size() << " breaches");
    for (const std::string& line : breaches) {
      BOOST_TEST_MESSAGE(c.name << ": " << line);
      for (const std::string& part : c.expected) BOOST_TEST(contains(line, part), c.name << ": '" << line << "' lacks '" << part << "'");
      BOOST_TEST(contains(line, copy), "the breach names the file");
    }
  }
  // A count above K cannot even be opened.
  expect_error([&] { Dataset::open(scratch.file("count above K.h5")); }, {"scene 3:", "objects/count is 9"});
}

BOOST_FIXTURE_TEST_CASE(verify_caps_the_breach_lines, Scenes) {
  TempDir scratch;
  const std::string copy = scratch.file("bad.h5");
  fs::copy_file(test(), copy);
  const std::vector<int32_t> bad_types(size_t(kTestScenes * kQuestionsPerScene), 9);
  overwrite(copy, "question_types", {0, 0}, {hsize_t(kTestScenes), hsize_t(kQuestionsPerScene)}, H5T_NATIVE_INT32, bad_types.data());
  const std::vector<std::string> breaches = verify_dataset(copy);
  BOOST_TEST_REQUIRE(breaches.size() == 21u);
  for (size_t k = 0; k < 20; ++k) {
    // Scene by scene, question by question: the first 20 breaches are scenes 0, 1 and 2.
    BOOST_TEST(contains(breaches[k], fmt::format("scene {}: question {} has type 9", k / 8, k % 8)), breaches[k]);
  }
  BOOST_TEST(contains(breaches.back(), fmt::format("... and {} more breaches", kTestScenes * kQuestionsPerScene - 20)), breaches.back());
}

// ---------------------------------------------------------------------------------------------
// Loader

namespace {

LoaderOptions scene_loader(uint64_t seed, bool hflip, int64_t caption_index = 0, int64_t text_context = 0) {
  LoaderOptions o;
  o.batch_size = 64;
  o.seed = seed;
  o.prefetch = 0;
  o.augment.hflip = hflip;
  o.caption_index = caption_index;
  o.text_context = text_context;
  return o;
}

// The batch's sample k as uint8 pixels (mean 0 and std 1: a value is pixel / 255).
std::vector<uint8_t> pixels_of(const Batch& batch, int64_t k, int64_t size) {
  const std::vector<float> all = batch.images.to_vector<float>();
  std::vector<uint8_t> out(size_t(size * size));
  for (int64_t p = 0; p < size * size; ++p) out[size_t(p)] = uint8_t(std::lround(all[size_t(k * size * size + p)] * 255.f));
  return out;
}

std::vector<uint8_t> mirrored(const std::vector<uint8_t>& image, int64_t size) {
  std::vector<uint8_t> out(image.size());
  for (int64_t y = 0; y < size; ++y)
    for (int64_t x = 0; x < size; ++x) out[size_t(y * size + x)] = image[size_t(y * size + size - 1 - x)];
  return out;
}

std::vector<std::string> mirror_all(std::vector<std::string> texts) {
  for (std::string& t : texts) t = mirror_text(t);
  return texts;
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(loader_serves_scene_fields_and_flips_them_with_the_pixels, Scenes) {
  const auto ds = Dataset::open(train());
  const int64_t size = options.size, K = options.max_objects, Q = kQuestionsPerScene;
  Loader loader(ds, scene_loader(11, true, 0));
  int64_t flipped = 0, unflipped = 0, flipped_captions_changed = 0, flipped_questions_changed = 0;
  for (int64_t p = 0; p < loader.batches_per_epoch(); ++p) {
    const Batch batch = loader.next();
    const int64_t b = int64_t(batch.indices.size());
    BOOST_TEST_REQUIRE((batch.boxes.shape() == Shape{b, K, 4}));
    BOOST_TEST_REQUIRE((batch.object_classes.shape() == Shape{b, K}));
    BOOST_TEST_REQUIRE((batch.object_count.shape() == Shape{b}));
    BOOST_TEST_REQUIRE((batch.question_types.shape() == Shape{b, Q}));
    BOOST_TEST_REQUIRE(batch.captions.size() == size_t(b));
    BOOST_TEST_REQUIRE(batch.swapped_captions.size() == size_t(b));
    BOOST_TEST_REQUIRE(batch.questions.size() == size_t(b));
    BOOST_TEST_REQUIRE(batch.answers.size() == size_t(b));
    const std::vector<float> boxes = batch.boxes.to_vector<float>();
    const std::vector<int64_t> classes = batch.object_classes.to_vector<int64_t>(), counts = batch.object_count.to_vector<int64_t>(),
                               types = batch.question_types.to_vector<int64_t>();
    for (int64_t k = 0; k < b; ++k) {
      const int64_t i = batch.indices[size_t(k)];
      const std::vector<uint8_t> original = image_of(*ds, i), served = pixels_of(batch, k, size);
      const bool is_flipped = served != original;
      BOOST_TEST_REQUIRE((served == (is_flipped ? mirrored(original, size) : original)), "sample " << i << " is neither the image nor its mirror");
      if (original == mirrored(original, size)) continue;  // symmetric: cannot tell
      ++(is_flipped ? flipped : unflipped);

      const ObjectsView v = ds->objects(i);
      BOOST_TEST(counts[size_t(k)] == v.count);
      std::vector<Box> served_boxes;
      for (int64_t o = 0; o < K; ++o) {
        const float* got = boxes.data() + (k * K + o) * 4;
        const float* want = v.boxes + 4 * o;
        BOOST_TEST(classes[size_t(k * K + o)] == v.classes[o]);
        if (o >= v.count) {
          BOOST_TEST((got[0] == 0 && got[1] == 0 && got[2] == 0 && got[3] == 0));
          continue;
        }
        served_boxes.push_back({got[0], got[1], got[2], got[3]});
        BOOST_TEST(got[0] == want[0]);
        BOOST_TEST(got[2] == want[2]);
        BOOST_TEST(got[1] == (is_flipped ? float(size) - want[3] : want[1]));
        BOOST_TEST(got[3] == (is_flipped ? float(size) - want[1] : want[3]));
      }
      // The served boxes are the tight boxes of the served pixels.
      const std::string error = tight_box_error(served, size, served_boxes);
      BOOST_TEST(error.empty(), "sample " << i << (is_flipped ? " (flipped): " : ": ") << error);

      const auto maybe_mirrored = [&](std::vector<std::string> texts) { return is_flipped ? mirror_all(texts) : texts; };
      BOOST_TEST(batch.captions[size_t(k)] == maybe_mirrored({ds->captions(i)[0]}).front());
      BOOST_TEST(batch.swapped_captions[size_t(k)] == maybe_mirrored({ds->swapped_caption(i)}).front());
      BOOST_TEST((batch.questions[size_t(k)] == maybe_mirrored(ds->questions(i))));
      BOOST_TEST((batch.answers[size_t(k)] == maybe_mirrored(ds->answers(i))));
      const std::vector<int32_t> want_types = ds->question_types(i);
      for (int64_t q = 0; q < Q; ++q) BOOST_TEST(types[size_t(k * Q + q)] == want_types[size_t(q)]);
      if (is_flipped) {
        flipped_captions_changed += mirror_text(ds->captions(i)[0]) != ds->captions(i)[0];
        flipped_questions_changed += mirror_all(ds->questions(i)) != ds->questions(i);
      }
    }
  }
  // Both kinds occur, and flipping really changed some text (else the text checks prove little).
  BOOST_TEST(flipped > 50);
  BOOST_TEST(unflipped > 50);
  BOOST_TEST(flipped_captions_changed > 10);
  BOOST_TEST(flipped_questions_changed > 10);
}

BOOST_FIXTURE_TEST_CASE(loader_refuses_crop_padding_for_scenes, Scenes) {
  LoaderOptions o = scene_loader(1, true);
  o.augment.crop_padding = 2;
  expect_error([&] { Loader(Dataset::open(train()), o); }, {"crop_padding", "hflip"});
  expect_error([&] { Loader(Dataset::open(train()), scene_loader(1, false, kCaptionsPerScene)); }, {"caption_index 3"});
}

BOOST_FIXTURE_TEST_CASE(loader_picks_captions_by_index_or_at_random, Scenes) {
  const auto ds = Dataset::open(test());
  for (int64_t pick = 0; pick < kCaptionsPerScene; ++pick) {
    Loader loader(ds, scene_loader(2, false, pick));
    for (int64_t p = 0; p < loader.batches_per_epoch(); ++p) {
      const Batch batch = loader.next();
      for (size_t k = 0; k < batch.indices.size(); ++k)
        BOOST_TEST(batch.captions[k] == ds->captions(batch.indices[k])[size_t(pick)]);
    }
  }
  // -1: one of the image's captions, another in other epochs.
  Loader loader(ds, scene_loader(2, false, -1));
  std::map<int64_t, std::set<int64_t>> picked;  // image -> caption indices served
  for (int64_t p = 0; p < 6 * loader.batches_per_epoch(); ++p) {
    const Batch batch = loader.next();
    for (size_t k = 0; k < batch.indices.size(); ++k) {
      const std::vector<std::string> all = ds->captions(batch.indices[k]);
      const auto at = std::find(all.begin(), all.end(), batch.captions[k]);
      BOOST_TEST_REQUIRE((at != all.end()));
      picked[batch.indices[k]].insert(at - all.begin());
    }
  }
  int64_t varied = 0;
  std::set<int64_t> any;
  for (const auto& [image, indices] : picked) varied += indices.size() > 1, any.insert(indices.begin(), indices.end());
  BOOST_TEST(varied > kTestScenes / 2);
  BOOST_TEST(any.size() == size_t(kCaptionsPerScene));
}

BOOST_FIXTURE_TEST_CASE(loader_tokens_decode_to_the_served_text, Scenes) {
  const auto ds = Dataset::open(train());
  constexpr int64_t context = 320;
  const int64_t Q = kQuestionsPerScene;
  Loader loader(ds, scene_loader(4, true, 0, context));
  const ByteTokenizer tokenizer(context);
  const Batch batch = loader.next();
  const int64_t b = int64_t(batch.indices.size());
  BOOST_TEST_REQUIRE((batch.caption_tokens.ids.shape() == Shape{b, context}));
  BOOST_TEST_REQUIRE((batch.question_tokens.ids.shape() == Shape{b * Q, context}));
  BOOST_TEST_REQUIRE((batch.answer_tokens.ids.shape() == Shape{b * Q, context}));
  BOOST_TEST(batch.caption_tokens.truncated == 0);
  BOOST_TEST(batch.question_tokens.truncated == 0);
  const std::vector<int64_t> captions = batch.caption_tokens.ids.to_vector<int64_t>(),
                             questions = batch.question_tokens.ids.to_vector<int64_t>(),
                             answers = batch.answer_tokens.ids.to_vector<int64_t>();
  auto row = [&](const std::vector<int64_t>& ids, int64_t r) {
    return tokenizer.decode(std::vector<int64_t>(ids.begin() + r * context, ids.begin() + (r + 1) * context));
  };
  for (int64_t k = 0; k < b; ++k) {
    BOOST_TEST(row(captions, k) == batch.captions[size_t(k)]);
    for (int64_t q = 0; q < Q; ++q) {
      BOOST_TEST(row(questions, k * Q + q) == batch.questions[size_t(k)][size_t(q)]);
      BOOST_TEST(row(answers, k * Q + q) == batch.answers[size_t(k)][size_t(q)]);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Clips (--frames F)

// Frame f of clip i is scene i * F + f of a scenes file made with the same arguments; the clip's
// per-frame text is that scene's own.
BOOST_AUTO_TEST_CASE(clip_files_are_runs_of_the_scenes_of_a_scenes_file) {
  TempDir dir;
  write_scene_items_dir(dir.path() / "items", 32, 16);
  const std::string items = (dir.path() / "items").string();
  constexpr int64_t F = 3, kTrain = 40, kTest = 12, K = 4;
  SceneOptions clip_options = small_scenes();
  clip_options.frames = F;
  import_scenes(items, dir.file("clips"), clip_options, kTrain, kTest, 2);
  import_scenes(items, dir.file("scenes"), small_scenes(), kTrain * F, kTest * F, 2);
  for (const char* split : {"train.h5", "test.h5"}) {
    const std::string path = (dir.path() / "clips" / split).string();
    const auto clips = Dataset::open(path, 1LL << 30, true), scenes = Dataset::open((dir.path() / "scenes" / split).string());
    const DatasetInfo& info = clips->info();
    const hsize_t N = hsize_t(split == std::string("train.h5") ? kTrain : kTest);
    BOOST_TEST(info.size == int64_t(N));
    BOOST_TEST(info.frames == F);
    BOOST_TEST((info.height == 48 && info.width == 48 && info.channels == 1));
    BOOST_TEST(clips->image_bytes() == F * 48 * 48);
    BOOST_TEST(info.max_objects == K);
    BOOST_TEST((info.object_class_names == scene_item_classes()));
    BOOST_TEST(info.captions_per_image == kCaptionsPerScene);
    BOOST_TEST(info.questions_per_image == kQuestionsPerScene);
    BOOST_TEST(!info.has_swapped_captions);
    BOOST_TEST((info.question_type_names == std::vector<std::string>{"count", "existence", "place", "size", "frame", "total"}));
    BOOST_TEST((stored_dims(path, "images") == std::vector<hsize_t>{N, F, 48, 48, 1}));
    BOOST_TEST((stored_dims(path, "objects/boxes") == std::vector<hsize_t>{N, F, K, 4}));
    BOOST_TEST((stored_dims(path, "objects/classes") == std::vector<hsize_t>{N, F, K}));
    BOOST_TEST((stored_dims(path, "objects/count") == std::vector<hsize_t>{N, F}));
    BOOST_TEST((stored_dims(path, "captions") == std::vector<hsize_t>{N, 3}));
    BOOST_TEST((stored_dims(path, "questions") == std::vector<hsize_t>{N, 8}));
    BOOST_TEST((stored_dims(path, "answers") == std::vector<hsize_t>{N, 8}));
    BOOST_TEST((stored_dims(path, "question_types") == std::vector<hsize_t>{N, 8}));
    BOOST_TEST(!has_link(path, "captions_swapped"));
    BOOST_TEST(int_attribute(path, "frames") == F);
    BOOST_TEST(int_attribute(path, "seed") == 5);
    BOOST_TEST(int_attribute((dir.path() / "scenes" / split).string(), "frames") == -1);  // scene files have none
    BOOST_TEST(stored_as(path, "images", H5T_STD_U8LE));
    BOOST_TEST(stored_as(path, "objects/boxes", H5T_IEEE_F32LE));
    BOOST_TEST(stored_as(path, "objects/classes", H5T_STD_I32LE));
    BOOST_TEST(stored_as(path, "objects/count", H5T_STD_I32LE));
    BOOST_TEST(stored_as(path, "question_types", H5T_STD_I32LE));
    BOOST_TEST(verify_dataset(path).empty());

    const int64_t frame_bytes = 48 * 48;
    for (int64_t i = 0; i < info.size; ++i) {
      const std::vector<uint8_t> clip = image_of(*clips, i);
      for (int64_t f = 0; f < F; ++f) {
        const int64_t scene = i * F + f;
        BOOST_TEST((std::vector<uint8_t>(clip.begin() + f * frame_bytes, clip.begin() + (f + 1) * frame_bytes) == image_of(*scenes, scene)),
                   split << " clip " << i << " frame " << f);
        const ObjectsView a = clips->objects(i, f), b = scenes->objects(scene);
        BOOST_TEST(a.count == b.count);
        BOOST_TEST(std::equal(a.boxes, a.boxes + 4 * K, b.boxes));
        BOOST_TEST(std::equal(a.classes, a.classes + K, b.classes));
      }
      // captions[1] and [2], and questions 4..7, are a frame's own, "in frame K, " before.
      const std::vector<std::string> captions = clips->captions(i), questions = clips->questions(i), answers = clips->answers(i);
      const std::vector<int32_t> types = clips->question_types(i);
      BOOST_TEST((types == std::vector<int32_t>{4, 4, 5, 5, 0, 1, 2, 3}));
      for (int64_t c = 1; c < 3; ++c) {
        const auto [k, rest] = frame_prefix(captions[size_t(c)]);
        BOOST_TEST_REQUIRE((k >= 1 && k <= F), captions[size_t(c)]);
        BOOST_TEST(rest == scenes->captions(i * F + k - 1)[size_t(c)]);
      }
      BOOST_TEST(contains(captions[0], "in all frames: "));
      for (size_t q = 4; q < 8; ++q) {
        const auto [k, rest] = frame_prefix(questions[q]);
        BOOST_TEST_REQUIRE((k >= 1 && k <= F), questions[q]);
        const std::vector<std::string> own = scenes->questions(i * F + k - 1), own_answers = scenes->answers(i * F + k - 1);
        const std::vector<int32_t> own_types = scenes->question_types(i * F + k - 1);
        bool found = false;
        for (size_t o = 0; o < own.size(); ++o) found |= own[o] == rest && own_answers[o] == answers[q] && own_types[o] == types[q];
        BOOST_TEST(found, questions[q] << " -> " << answers[q] << " is not a question of scene " << i * F + k - 1);
      }
    }
    // Code that reads single images is refused clips; a clip's objects are per frame, and
    // objects(i) asks for one scene's.
    expect_error([&] { Dataset::open(path); }, {path, "clips of 3 frames", "single images [N,H,W,C]"});
    expect_error([&] { clips->objects(0); }, {path, "clips of 3 frames", "use objects(i, frame)"});
    expect_error([&] { clips->objects(0, F); }, {"frame 3", "3 frames"});
  }
}

BOOST_AUTO_TEST_CASE(clip_files_are_the_same_bytes_at_any_thread_count_and_frames_1_changes_nothing) {
  TempDir dir;
  write_scene_items_dir(dir.path() / "items", 32, 16);
  const std::string items = (dir.path() / "items").string();
  SceneOptions options = small_scenes();
  options.frames = 2;
  import_scenes(items, dir.file("one"), options, 60, 20, 1);
  import_scenes(items, dir.file("two"), options, 60, 20, 2);
  for (const char* split : {"train.h5", "test.h5"}) {
    const std::string a = file_bytes(dir.path() / "one" / split), b = file_bytes(dir.path() / "two" / split);
    BOOST_TEST(!a.empty());
    BOOST_TEST((a == b), split << " differs between 1 and 2 threads");
  }
  options.seed = 6;
  import_scenes(items, dir.file("seed"), options, 60, 20, 2);
  BOOST_TEST((file_bytes(dir.path() / "seed" / "train.h5") != file_bytes(dir.path() / "one" / "train.h5")));

  // --frames 1 writes the scene files of before clips existed, byte for byte: these hashes are of
  // the files the code wrote then (libhdf5 1.10.8, Debian 12), for the arguments of
  // same_arguments_same_bytes_at_any_thread_count. Another HDF5 may lay the same data out otherwise.
  SceneOptions single = small_scenes();
  single.frames = 1;
  import_scenes(items, dir.file("single"), single, 200, 50, 1);
  import_scenes(items, dir.file("default"), small_scenes(), 200, 50, 2);
  BOOST_TEST((file_bytes(dir.path() / "single" / "train.h5") == file_bytes(dir.path() / "default" / "train.h5")));
  unsigned major = 0, minor = 0, release = 0;
  H5get_libversion(&major, &minor, &release);
  if (major == 1 && minor == 10 && release == 8) {
    BOOST_TEST(fnv1a(file_bytes(dir.path() / "single" / "train.h5")) == 0x5c680be717d9049cull);
    BOOST_TEST(fnv1a(file_bytes(dir.path() / "single" / "test.h5")) == 0x83f616a543791e7aull);
  } else {
    BOOST_TEST_MESSAGE("libhdf5 " << major << "." << minor << "." << release << ": the recorded bytes are of 1.10.8; not compared");
  }
}

BOOST_AUTO_TEST_CASE(bad_frames_are_refused_by_name) {
  TempDir dir;
  write_scene_items_dir(dir.path() / "items", 32, 16);
  for (int64_t frames : {0, -1, 65}) {
    SceneOptions o = small_scenes();
    o.frames = frames;
    expect_error([&] { import_scenes((dir.path() / "items").string(), dir.file("out"), o, 10, 10, 1); },
                 {"--frames " + std::to_string(frames), "[1, 64]"});
    BOOST_TEST(!fs::exists(dir.file("out")));
  }
}

BOOST_AUTO_TEST_CASE(verify_names_the_clip_and_the_frame) {
  TempDir dir;
  write_scene_items_dir(dir.path() / "items", 32, 16);
  SceneOptions options = small_scenes();
  options.frames = 3;
  import_scenes((dir.path() / "items").string(), dir.file("clips"), options, 10, 0, 1);
  const std::string path = dir.file("clips/train.h5");
  BOOST_TEST(verify_dataset(path).empty());
  const float outside = 60.f;
  overwrite(path, "objects/boxes", {4, 2, 0, 3}, {1, 1, 1, 1}, H5T_NATIVE_FLOAT, &outside);
  const std::vector<std::string> breaches = verify_dataset(path);
  BOOST_TEST_REQUIRE(breaches.size() == 1u);
  BOOST_TEST(contains(breaches[0], "clip 4 frame 2: object 0 has box"), breaches[0]);
  const int32_t nine = 9;
  overwrite(path, "objects/count", {4, 1}, {1, 1}, H5T_NATIVE_INT32, &nine);
  expect_error([&] { Dataset::open(path, 1LL << 30, true); }, {"clip 4 frame 1: objects/count is 9"});
}

BOOST_AUTO_TEST_CASE(loader_serves_clips_with_all_frames_flipped_together) {
  TempDir dir;
  write_scene_items_dir(dir.path() / "items", 32, 16);
  SceneOptions options = small_scenes();
  constexpr int64_t F = 3;
  options.frames = F;
  import_scenes((dir.path() / "items").string(), dir.file("clips"), options, 120, 0, 2);
  const auto ds = Dataset::open(dir.file("clips/train.h5"), 1LL << 30, true);
  const int64_t size = options.size, K = options.max_objects, Q = kQuestionsPerScene, frame_bytes = size * size;
  Loader loader(ds, scene_loader(3, true, -1));
  Loader again(ds, scene_loader(3, true, -1));
  int64_t flipped = 0, unflipped = 0, text_changed = 0;
  for (int64_t p = 0; p < loader.batches_per_epoch(); ++p) {
    const Batch batch = loader.next(), twin = again.next();
    const int64_t b = int64_t(batch.indices.size());
    BOOST_TEST_REQUIRE((batch.images.shape() == Shape{b, F, 1, size, size}));
    BOOST_TEST_REQUIRE((batch.boxes.shape() == Shape{b, F, K, 4}));
    BOOST_TEST_REQUIRE((batch.object_classes.shape() == Shape{b, F, K}));
    BOOST_TEST_REQUIRE((batch.object_count.shape() == Shape{b, F}));
    BOOST_TEST_REQUIRE((batch.question_types.shape() == Shape{b, Q}));
    BOOST_TEST(batch.swapped_captions.empty());
    // The same seed, the same batches.
    BOOST_TEST((batch.indices == twin.indices));
    BOOST_TEST((batch.images.to_vector<float>() == twin.images.to_vector<float>()));
    BOOST_TEST((batch.boxes.to_vector<float>() == twin.boxes.to_vector<float>()));
    BOOST_TEST((batch.captions == twin.captions));
    const std::vector<float> all = batch.images.to_vector<float>(), boxes = batch.boxes.to_vector<float>();
    const std::vector<int64_t> classes = batch.object_classes.to_vector<int64_t>(), counts = batch.object_count.to_vector<int64_t>();
    for (int64_t k = 0; k < b; ++k) {
      const int64_t i = batch.indices[size_t(k)];
      const std::vector<uint8_t> clip = image_of(*ds, i);
      // Frame by frame: the frame or its mirror, and the same choice for every frame.
      int64_t mirrored_frames = 0, asymmetric = 0;
      for (int64_t f = 0; f < F; ++f) {
        std::vector<uint8_t> frame(clip.begin() + f * frame_bytes, clip.begin() + (f + 1) * frame_bytes), got(static_cast<size_t>(frame_bytes));
        for (int64_t px = 0; px < frame_bytes; ++px)
          got[size_t(px)] = uint8_t(std::lround(all[size_t((k * F + f) * frame_bytes + px)] * 255.f));
        const bool is_mirror = got != frame;
        BOOST_TEST_REQUIRE((got == (is_mirror ? mirrored(frame, size) : frame)), "clip " << i << " frame " << f);
        if (frame != mirrored(frame, size)) ++asymmetric, mirrored_frames += is_mirror;
      }
      BOOST_TEST_REQUIRE(asymmetric > 0);
      BOOST_TEST((mirrored_frames == 0 || mirrored_frames == asymmetric), "clip " << i << ": some frames flipped, others not");
      const bool is_flipped = mirrored_frames > 0;
      ++(is_flipped ? flipped : unflipped);
      for (int64_t f = 0; f < F; ++f) {
        const ObjectsView v = ds->objects(i, f);
        BOOST_TEST(counts[size_t(k * F + f)] == v.count);
        for (int64_t o = 0; o < K; ++o) {
          const float* got = boxes.data() + ((k * F + f) * K + o) * 4;
          const float* want = v.boxes + 4 * o;
          BOOST_TEST(classes[size_t((k * F + f) * K + o)] == v.classes[o]);
          if (o >= v.count) continue;
          BOOST_TEST((got[0] == want[0] && got[2] == want[2]));
          BOOST_TEST(got[1] == (is_flipped ? float(size) - want[3] : want[1]));
          BOOST_TEST(got[3] == (is_flipped ? float(size) - want[1] : want[3]));
        }
      }
      // The text mirrored once with the clip (twice would be the identity).
      const auto maybe_mirrored = [&](std::vector<std::string> texts) { return is_flipped ? mirror_all(texts) : texts; };
      const std::vector<std::string> all_captions = maybe_mirrored(ds->captions(i));
      BOOST_TEST((batch.all_captions[size_t(k)] == all_captions));
      BOOST_TEST((std::find(all_captions.begin(), all_captions.end(), batch.captions[size_t(k)]) != all_captions.end()));
      BOOST_TEST((batch.questions[size_t(k)] == maybe_mirrored(ds->questions(i))));
      BOOST_TEST((batch.answers[size_t(k)] == maybe_mirrored(ds->answers(i))));
      if (is_flipped) text_changed += mirror_all(ds->questions(i)) != ds->questions(i) || mirror_all(ds->captions(i)) != ds->captions(i);
    }
  }
  BOOST_TEST(flipped > 20);
  BOOST_TEST(unflipped > 20);
  BOOST_TEST(text_changed > 5);
}

// ---------------------------------------------------------------------------------------------
// mirror_text

BOOST_AUTO_TEST_CASE(mirror_text_swaps_whole_words_only) {
  BOOST_TEST(mirror_text("a bag left of a coat") == "a bag right of a coat");
  BOOST_TEST(mirror_text("what is right of the sneaker?") == "what is left of the sneaker?");
  BOOST_TEST(mirror_text("left,right;left") == "right,left;right");
  BOOST_TEST(mirror_text("top left") == "top right");
  BOOST_TEST(mirror_text("leftover rights leftright bright cleft") == "leftover rights leftright bright cleft");
  BOOST_TEST(mirror_text("") == "");
  BOOST_TEST(mirror_text("two bags above a coat") == "two bags above a coat");
}

BOOST_FIXTURE_TEST_CASE(mirror_text_twice_is_the_identity, Scenes) {
  const auto ds = Dataset::open(test());
  int64_t changed = 0;
  for (int64_t i = 0; i < ds->size(); ++i) {
    std::vector<std::string> texts = ds->captions(i);
    for (const auto& more : {ds->questions(i), ds->answers(i)}) texts.insert(texts.end(), more.begin(), more.end());
    texts.push_back(ds->swapped_caption(i));
    for (const std::string& t : texts) {
      BOOST_TEST(mirror_text(mirror_text(t)) == t);
      changed += mirror_text(t) != t;
    }
  }
  BOOST_TEST(changed > 0);  // the identity is not trivial
}

BOOST_AUTO_TEST_SUITE_END()
