#pragma once
// Multi-object scenes made from a labelled set of single items (Fashion-MNIST): each scene puts a
// few items, resized and placed at random with little overlap, on a black square, and records
// each item's class and tight box and the text that describes the scene (data/scene_text.h).
// Every scene is a pure function of (seed, split, index), so the same arguments give
// byte-identical files whatever the thread count. docs/DATA.md has the schema.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/scene_text.h"

namespace tessera::data {

struct SceneOptions {
  int64_t size = 64;                    // scenes are size x size x 1
  int64_t min_objects = 1, max_objects = 4;
  int64_t min_scale = 14, max_scale = 32;  // an item's longer side, in pixels
  double max_iou = 0.2;                 // between any two items' boxes
  uint64_t seed = 0;
  // Scenes per sample: 1 writes scenes; F > 1 writes clips of F frames, frame f of clip i being
  // scene i * F + f of the split (docs/DATA.md, "Clips").
  int64_t frames = 1;
  // Throws an Error naming the option at fault.
  void check() const;
  // small below the lower third of the scale range, large above the upper third.
  SizeWords size_words() const;
};

struct Scene {
  std::vector<uint8_t> image;  // [size, size, 1]
  std::vector<SceneObject> objects;
  SceneText text;
};

// options.frames scenes and the text of the clip they make (describe_clip).
struct Clip {
  std::vector<Scene> frames;
  SceneText text;
};

// Makes scenes from the items of one labelled, one-channel data set.
class SceneComposer {
 public:
  // `split` keeps the scenes of different splits apart (0 train, 1 test).
  SceneComposer(std::shared_ptr<const Dataset> items, const SceneOptions& options, uint64_t split);
  Scene make(int64_t index) const;
  // Scenes index * F .. index * F + F - 1 (F = options.frames) and their clip's text, which has
  // a random stream of its own.
  Clip make_clip(int64_t index) const;
  const Nouns& nouns() const { return nouns_; }

 private:
  std::shared_ptr<const Dataset> items_;
  SceneOptions options_;
  uint64_t split_;
  Nouns nouns_;
  std::vector<std::vector<int64_t>> items_of_class_;
};

struct SceneImportSummary {
  int64_t train = 0, test = 0;
};
// Called after each block of scenes (clips, with frames > 1): the split ("train" or "test"), samples
// done and in all.
using SceneProgress = std::function<void(const std::string& split, int64_t done, int64_t total)>;

// source_dir/train.h5 and test.h5 (as `tessera data import fashion-mnist` writes them) ->
// out_dir/train.h5 (`train` scenes, or clips, from train items only) and out_dir/test.h5 (`test`,
// from test items only). A split of 0 scenes is not written. `threads` 0: all cores. The files are marked
// written_by "tessera data import"; an existing one another command wrote is replaced only with
// `overwrite` (data/import.h).
SceneImportSummary import_scenes(const std::string& source_dir, const std::string& out_dir, const SceneOptions& options,
                                 int64_t train, int64_t test, int threads = 0, const SceneProgress& progress = {},
                                 bool overwrite = false);

}  // namespace tessera::data
