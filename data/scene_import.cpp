#include "data/scene_import.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <thread>

#include "autograd/error.h"
#include "data/hdf5_util.h"
#include "data/image_io.h"
#include "data/import.h"
#include "data/output_folder.h"
#include "data/random_stream.h"

namespace tessera::data {

namespace fs = std::filesystem;

void SceneOptions::check() const {
  if (size < 8 || size > 4096) fail("scenes: --size {} is outside [8, 4096]", size);
  if (min_objects < 1 || min_objects > max_objects || max_objects > 16)
    fail("scenes: --objects {}-{} must satisfy 1 <= min <= max <= 16", min_objects, max_objects);
  if (min_scale < 2 || min_scale > max_scale || max_scale > size)
    fail("scenes: --scale {}-{} must satisfy 2 <= min <= max <= --size ({})", min_scale, max_scale, size);
  if (!(max_iou >= 0 && max_iou <= 1)) fail("scenes: --max-iou {} is outside [0, 1]", max_iou);
  if (frames < 1 || frames > 64) fail("scenes: --frames {} is outside [1, 64]", frames);
}

SizeWords SceneOptions::size_words() const {
  const float third = float(max_scale - min_scale) / 3.f;
  return SizeWords{float(min_scale) + third, float(max_scale) - third};
}

namespace {

// Random streams: one per scene for its picture, another for its text, and one per clip for the
// clip's text.
constexpr uint64_t kTextStream = uint64_t(1) << 63;
constexpr uint64_t kClipTextStream = uint64_t(1) << 62;
uint64_t scene_stream(uint64_t split, int64_t index) { return (split << 40) | uint64_t(index); }
// Of the objects after the first, this fraction repeats the class of an earlier one, so that
// "how many bags" has answers beyond 0 and 1.
constexpr double kRepeatClass = 0.4;
constexpr int kPlacementTries = 100;

// An item cut to the bounding box of its non-zero pixels (empty if it has none).
Image tight_crop(const uint8_t* pixels, int64_t height, int64_t width) {
  int64_t y0 = height, y1 = 0, x0 = width, x1 = 0;
  for (int64_t y = 0; y < height; ++y)
    for (int64_t x = 0; x < width; ++x)
      if (pixels[y * width + x] > 0) y0 = std::min(y0, y), y1 = std::max(y1, y + 1), x0 = std::min(x0, x), x1 = std::max(x1, x + 1);
  if (y0 >= y1) return {};
  Image out{y1 - y0, x1 - x0, 1, std::vector<uint8_t>(size_t((y1 - y0) * (x1 - x0)))};
  for (int64_t y = y0; y < y1; ++y) std::copy_n(pixels + y * width + x0, x1 - x0, out.pixels.data() + (y - y0) * (x1 - x0));
  return out;
}

}  // namespace

SceneComposer::SceneComposer(std::shared_ptr<const Dataset> items, const SceneOptions& options, uint64_t split)
    : items_(std::move(items)), options_(options), split_(split), nouns_(items_->info().class_names) {
  options_.check();
  const DatasetInfo& info = items_->info();
  if (!info.has_labels) fail("scenes: the items file '{}' has no labels; scenes need each item's class", info.path);
  if (info.channels != 1) fail("scenes: the items file '{}' has {} channels, expected 1 (gray items)", info.path, info.channels);
  items_of_class_.resize(info.class_names.size());
  for (int64_t i = 0; i < info.size; ++i) items_of_class_[size_t(items_->label(i))].push_back(i);
  for (size_t c = 0; c < items_of_class_.size(); ++c)
    if (items_of_class_[c].empty()) fail("scenes: the items file '{}' has no item of class {} ('{}')", info.path, c, info.class_names[c]);
}

Scene SceneComposer::make(int64_t index) const {
  RandomStream random(options_.seed, scene_stream(split_, index));
  const DatasetInfo& info = items_->info();
  const int64_t classes = int64_t(items_of_class_.size()), size = options_.size;
  const int64_t wanted = random.between(options_.min_objects, options_.max_objects);
  std::vector<int32_t> picked;
  for (int64_t k = 0; k < wanted; ++k)
    picked.push_back(k > 0 && random.chance(kRepeatClass) ? picked[size_t(random.below(k))] : int32_t(random.below(classes)));

  Scene scene;
  scene.image.assign(size_t(size * size), 0);
  std::vector<uint8_t> item(size_t(items_->image_bytes()));
  for (size_t k = 0; k < picked.size(); ++k) {
    const int32_t cls = picked[k];
    bool placed = false;
    // Another item and scale until one fits; an object that cannot be placed is dropped unless
    // the scene would fall below min_objects.
    for (int attempt = 0; attempt < 1000 && !placed; ++attempt) {
      if (attempt >= 10 && int64_t(scene.objects.size()) + int64_t(picked.size() - k) > options_.min_objects) break;
      const auto& pool = items_of_class_[size_t(cls)];
      items_->read_images({pool[size_t(random.below(int64_t(pool.size())))]}, item.data());
      const Image crop = tight_crop(item.data(), info.height, info.width);
      if (crop.pixels.empty()) continue;
      const int64_t side = random.between(options_.min_scale, options_.max_scale);
      const bool tall = crop.height >= crop.width;
      const int64_t shorter = std::max<int64_t>(1, std::lround(double(tall ? crop.width : crop.height) * double(side) /
                                                               double(tall ? crop.height : crop.width)));
      // Resampling can fade a faint edge to 0: crop again so that the box is tight.
      const Image patch = tight_crop(resize(crop, tall ? side : shorter, tall ? shorter : side).pixels.data(),
                                     tall ? side : shorter, tall ? shorter : side);
      if (patch.pixels.empty()) continue;
      for (int t = 0; t < kPlacementTries && !placed; ++t) {
        const int64_t y0 = random.below(size - patch.height + 1), x0 = random.below(size - patch.width + 1);
        const Box box{float(y0), float(x0), float(y0 + patch.height), float(x0 + patch.width)};
        if (std::any_of(scene.objects.begin(), scene.objects.end(),
                        [&](const SceneObject& o) { return intersection_over_union(o.box, box) > options_.max_iou; }))
          continue;
        for (int64_t y = 0; y < patch.height; ++y)
          for (int64_t x = 0; x < patch.width; ++x) {
            uint8_t& out = scene.image[size_t((y0 + y) * size + x0 + x)];
            out = std::max(out, patch.pixels[size_t(y * patch.width + x)]);  // composited with max on black
          }
        scene.objects.push_back({cls, box});
        placed = true;
      }
    }
    if (!placed && int64_t(scene.objects.size()) + int64_t(picked.size() - k) <= options_.min_objects)
      fail("scenes: cannot place {} objects of {}-{} pixels with IoU <= {} in a {}x{} image (scene {}); "
           "lower --objects or --scale, or raise --max-iou",
           options_.min_objects, options_.min_scale, options_.max_scale, options_.max_iou, size, size, index);
  }
  scene.text = describe_scene(scene.objects, nouns_, options_.size_words(), size, options_.seed,
                              kTextStream | scene_stream(split_, index));
  return scene;
}

Clip SceneComposer::make_clip(int64_t index) const {
  Clip clip;
  std::vector<std::vector<SceneObject>> objects;
  std::vector<SceneText> texts;
  for (int64_t f = 0; f < options_.frames; ++f) {
    clip.frames.push_back(make(index * options_.frames + f));
    objects.push_back(clip.frames.back().objects);
    texts.push_back(clip.frames.back().text);
  }
  clip.text = describe_clip(objects, texts, nouns_, options_.seed, kClipTextStream | scene_stream(split_, index));
  return clip;
}

// ---------------------------------------------------------------------------------------------
// Files

namespace {

using h5::Handle;

// Holds the open datasets of one scenes file while blocks of scenes (or clips) are written into it.
class SceneFileWriter {
 public:
  SceneFileWriter(hid_t file, const std::string& path, int64_t n, const SceneOptions& o, const DatasetInfo& source)
      : max_objects_(o.max_objects), frames_(o.frames) {
    const hsize_t N = hsize_t(n), S = hsize_t(o.size), K = hsize_t(o.max_objects);
    const bool clips = o.frames > 1;
    // [N, ...] for scenes; clips put the frame after N in the images and the objects.
    auto per_frame = [&](std::vector<hsize_t> rest) {
      rest.insert(rest.begin(), N);
      if (clips) rest.insert(rest.begin() + 1, hsize_t(o.frames));
      return rest;
    };
    images_ = std::make_unique<h5::RowWriter>(file, "images", H5T_STD_U8LE, per_frame({S, S, 1}), path, true);
    Handle group_props(H5Pcreate(H5P_GROUP_CREATE));
    H5Pset_obj_track_times(group_props.get(), false);  // no creation time: same arguments, same bytes
    Handle group(H5Gcreate2(file, "objects", H5P_DEFAULT, group_props.get(), H5P_DEFAULT));
    if (!group.valid()) fail("{}: cannot create group 'objects'", path);
    boxes_ = std::make_unique<h5::RowWriter>(file, "objects/boxes", H5T_IEEE_F32LE, per_frame({K, 4}), path, true);
    classes_ = std::make_unique<h5::RowWriter>(file, "objects/classes", H5T_STD_I32LE, per_frame({K}), path, true);
    count_ = std::make_unique<h5::RowWriter>(file, "objects/count", H5T_STD_I32LE, per_frame({}), path, true);
    h5::write_attribute(classes_->id(), "class_names", source.class_names);
    const SizeWords words = o.size_words();
    h5::write_attribute(group.get(), "small_below", double(words.small_below));
    h5::write_attribute(group.get(), "large_above", double(words.large_above));
    const Handle text = h5::utf8_string_type();
    captions_ = std::make_unique<h5::RowWriter>(file, "captions", text.get(), std::vector<hsize_t>{N, hsize_t(kCaptionsPerScene)}, path);
    if (!clips) swapped_ = std::make_unique<h5::RowWriter>(file, "captions_swapped", text.get(), std::vector<hsize_t>{N}, path);
    questions_ = std::make_unique<h5::RowWriter>(file, "questions", text.get(), std::vector<hsize_t>{N, hsize_t(kQuestionsPerScene)}, path);
    answers_ = std::make_unique<h5::RowWriter>(file, "answers", text.get(), std::vector<hsize_t>{N, hsize_t(kQuestionsPerScene)}, path);
    types_ = std::make_unique<h5::RowWriter>(file, "question_types", H5T_STD_I32LE,
                                             std::vector<hsize_t>{N, hsize_t(kQuestionsPerScene)}, path, true);
    // Scene files name only the types their questions have, as they always did.
    const std::vector<std::string>& names = question_type_names();
    h5::write_attribute(types_->id(), "names",
                        clips ? names : std::vector<std::string>(names.begin(), names.begin() + kSceneQuestionTypes));
    // How the file was made, so that it can be made again.
    h5::write_attribute(file, "generator", std::string("tessera data import scenes"));
    h5::write_attribute(file, "source", fs::path(source.path).filename().string());
    h5::write_attribute(file, "seed", int64_t(o.seed));
    h5::write_attribute(file, "objects", std::vector<int64_t>{o.min_objects, o.max_objects});
    h5::write_attribute(file, "scale", std::vector<int64_t>{o.min_scale, o.max_scale});
    h5::write_attribute(file, "max_iou", o.max_iou);
    if (clips) h5::write_attribute(file, "frames", int64_t(o.frames));
  }

  // Samples start .. start + n - 1, each of `frames` scenes (one for a scenes file).
  void write(int64_t start, const std::vector<Clip>& clips) {
    const int64_t n = int64_t(clips.size()), K = max_objects_, F = frames_;
    std::vector<uint8_t> images;
    std::vector<float> boxes(size_t(n * F * K * 4), 0.f);
    std::vector<int32_t> classes(static_cast<size_t>(n * F * K), -1), count(static_cast<size_t>(n * F)), types;
    std::vector<const char*> captions, swapped, questions, answers;
    for (int64_t i = 0; i < n; ++i) {
      const Clip& clip = clips[size_t(i)];
      for (int64_t f = 0; f < F; ++f) {
        const Scene& s = clip.frames[size_t(f)];
        const int64_t row = i * F + f;
        images.insert(images.end(), s.image.begin(), s.image.end());
        count[size_t(row)] = int32_t(s.objects.size());
        for (size_t k = 0; k < s.objects.size(); ++k) {
          const Box& b = s.objects[k].box;
          const float values[4] = {b.y_min, b.x_min, b.y_max, b.x_max};
          std::copy_n(values, 4, &boxes[size_t((row * K + int64_t(k)) * 4)]);
          classes[size_t(row * K + int64_t(k))] = s.objects[k].cls;
        }
      }
      for (const std::string& c : clip.text.captions) captions.push_back(c.c_str());
      swapped.push_back(clip.text.swapped_caption.c_str());
      for (const SceneQuestion& q : clip.text.questions) {
        questions.push_back(q.question.c_str());
        answers.push_back(q.answer.c_str());
        types.push_back(int32_t(q.type));
      }
    }
    const hsize_t at = hsize_t(start), rows = hsize_t(n);
    const Handle text = h5::utf8_string_type();
    images_->write(H5T_NATIVE_UINT8, at, rows, images.data());
    boxes_->write(H5T_NATIVE_FLOAT, at, rows, boxes.data());
    classes_->write(H5T_NATIVE_INT32, at, rows, classes.data());
    count_->write(H5T_NATIVE_INT32, at, rows, count.data());
    captions_->write(text.get(), at, rows, captions.data());
    if (swapped_) swapped_->write(text.get(), at, rows, swapped.data());
    questions_->write(text.get(), at, rows, questions.data());
    answers_->write(text.get(), at, rows, answers.data());
    types_->write(H5T_NATIVE_INT32, at, rows, types.data());
  }

 private:
  int64_t max_objects_, frames_;
  std::unique_ptr<h5::RowWriter> images_, boxes_, classes_, count_, captions_, swapped_, questions_, answers_, types_;
};

// The items of one split, opened and checked (labels, one channel, every class) by its composer.
struct SplitSource {
  std::shared_ptr<const Dataset> items;
  std::unique_ptr<SceneComposer> composer;
};

void write_split(const SplitSource& source, const std::string& out, const SceneOptions& options,
                 const std::string& name, int64_t n, int threads, const SceneProgress& progress) {
  const SceneComposer& composer = *source.composer;
  h5::write_atomically(out, [&](hid_t file) {
    SceneFileWriter writer(file, out, n, options, source.items->info());
    h5::mark_written_by(file, kImportCommand);
    // About 4096 scenes a block, whole clips.
    const int64_t block = std::max<int64_t>(1, 4096 / options.frames);
    std::vector<Clip> samples;
    for (int64_t start = 0; start < n; start += block) {
      const int64_t count = std::min(block, n - start);
      samples.assign(size_t(count), Clip{});
      // Sample i of the block on thread i % threads: each is a function of its index alone. A
      // scene is a clip of one frame with the scene's own text.
      std::vector<std::thread> workers;
      std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
      for (int t = 0; t < threads; ++t)
        workers.emplace_back([&, t] {
          try {
            for (int64_t i = t; i < count; i += threads) {
              Clip& clip = samples[size_t(i)];
              if (options.frames > 1) {
                clip = composer.make_clip(start + i);
              } else {
                clip.frames = {composer.make(start + i)};
                clip.text = std::move(clip.frames[0].text);
              }
            }
          } catch (...) {
            errors[size_t(t)] = std::current_exception();
          }
        });
      for (auto& w : workers) w.join();
      for (const auto& e : errors)
        if (e) std::rethrow_exception(e);
      writer.write(start, samples);
      if (progress) progress(name, start + count, n);
    }
  });
}

}  // namespace

SceneImportSummary import_scenes(const std::string& source_dir, const std::string& out_dir, const SceneOptions& options,
                                 int64_t train, int64_t test, int threads, const SceneProgress& progress,
                                 bool overwrite) {
  options.check();
  if (train < 0 || test < 0) fail("scenes: --train {} and --test {} must not be negative", train, test);
  if (train + test == 0) fail("scenes: --train and --test are both 0; nothing to write");
  if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
  SceneImportSummary summary;
  const struct {
    const char* name;
    int64_t count;
    int64_t* done;
  } splits[] = {{"train", train, &summary.train}, {"test", test, &summary.test}};
  auto out_file = [&](const auto& s) { return (fs::path(out_dir) / (std::string(s.name) + ".h5")).string(); };
  // Both splits' items are checked before anything is written, so that a refusal of the test
  // items does not leave a new train.h5 (or a new output folder) behind.
  SplitSource sources[2];
  for (uint64_t split = 0; split < 2; ++split) {
    const auto& s = splits[split];
    if (s.count == 0) continue;
    const std::string source = (fs::path(source_dir) / (std::string(s.name) + ".h5")).string();
    if (!fs::exists(source))
      fail("scenes: '{}' not found (import the items first: tessera data import fashion-mnist --out {})", source, source_dir);
    h5::refuse_same_file(source, out_file(s), "items file");
    h5::refuse_to_replace(out_file(s), kImportCommand, overwrite);
    sources[split].items = Dataset::open(source);
    sources[split].composer = std::make_unique<SceneComposer>(sources[split].items, options, split);
  }
  OutputFolder folder(out_dir, "scenes");
  for (uint64_t split = 0; split < 2; ++split) {
    const auto& s = splits[split];
    if (s.count == 0) continue;
    write_split(sources[split], out_file(s), options, s.name, s.count, threads, progress);
    *s.done = s.count;
  }
  folder.keep();
  return summary;
}

}  // namespace tessera::data
