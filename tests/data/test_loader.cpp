// The loader: each epoch visits every index once, batches depend only on (seed, epoch,
// position), restore() resumes exactly, the prefetch thread stops cleanly, augmentation and
// caption templates are deterministic and do what they say.
#include <boost/test/unit_test.hpp>
#include <map>
#include <numeric>
#include <set>

#include "autograd/error.h"
#include "data/hdf5_util.h"
#include "data/loader.h"
#include "data_test_util.h"

using namespace tessera;
using namespace tessera::data;
using namespace tessera::data::testing;

namespace {

struct Fixture {
  TempDir dir;
  std::string path = dir.file("set.h5");
  static constexpr int64_t n = 103, h = 6, w = 5, c = 2;
  Fixture() { write_pattern_dataset(path, n, h, w, c, 4); }
  std::shared_ptr<Dataset> open(int64_t limit = 1LL << 30) const { return Dataset::open(path, limit); }
};

LoaderOptions options(int64_t batch, uint64_t seed = 7, int prefetch = 2) {
  LoaderOptions o;
  o.batch_size = batch;
  o.seed = seed;
  o.prefetch = prefetch;
  return o;
}

bool same_batch(const Batch& a, const Batch& b) {
  if (a.indices != b.indices || a.epoch != b.epoch || a.position != b.position || a.captions != b.captions) return false;
  if (a.labels.defined() != b.labels.defined()) return false;
  if (a.labels.defined() && a.labels.to_vector<int64_t>() != b.labels.to_vector<int64_t>()) return false;
  return a.images.shape() == b.images.shape() && a.images.to_vector<float>() == b.images.to_vector<float>();
}

std::vector<Batch> take(Loader& loader, int count) {
  std::vector<Batch> out;
  for (int i = 0; i < count; ++i) out.push_back(loader.next());
  return out;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(loader, Fixture)

BOOST_AUTO_TEST_CASE(every_index_once_per_epoch) {
  Loader loader(open(), options(10));
  BOOST_TEST(loader.batches_per_epoch() == 11);
  std::vector<std::vector<int64_t>> orders;
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    std::vector<int64_t> seen;
    for (int64_t p = 0; p < 11; ++p) {
      const Batch b = loader.next();
      BOOST_TEST(b.epoch == epoch);
      BOOST_TEST(b.position == p);
      BOOST_TEST(b.images.shape() == (Shape{p == 10 ? 3 : 10, c, h, w}), boost::test_tools::per_element());
      seen.insert(seen.end(), b.indices.begin(), b.indices.end());
    }
    orders.push_back(seen);
    std::sort(seen.begin(), seen.end());
    std::vector<int64_t> all(n);
    std::iota(all.begin(), all.end(), 0);
    BOOST_TEST(seen == all, boost::test_tools::per_element());
  }
  BOOST_TEST(orders[0] != orders[1]);  // epochs are shuffled differently
  BOOST_TEST(orders[1] != orders[2]);
  std::vector<int64_t> identity(n);
  std::iota(identity.begin(), identity.end(), 0);
  BOOST_TEST(orders[0] != identity);
}

BOOST_AUTO_TEST_CASE(drop_last_and_no_shuffle) {
  LoaderOptions o = options(10);
  o.drop_last = true;
  o.shuffle = false;
  Loader loader(open(), o);
  BOOST_TEST(loader.batches_per_epoch() == 10);
  for (int64_t p = 0; p < 10; ++p) {
    const Batch b = loader.next();
    BOOST_TEST(b.indices.size() == 10u);
    for (int64_t k = 0; k < 10; ++k) BOOST_TEST(b.indices[size_t(k)] == p * 10 + k);
  }
  const Batch first = loader.next();  // rolled over, the 3 leftovers dropped
  BOOST_TEST(first.epoch == 1);
  BOOST_TEST(first.indices[0] == 0);
  o.batch_size = 200;
  BOOST_CHECK_THROW(Loader(open(), o), Error);
}

BOOST_AUTO_TEST_CASE(pixels_labels_and_normalisation) {
  LoaderOptions o = options(8);
  o.mean = {0.5f, 0.25f};
  o.std = {0.5f, 2.0f};
  Loader loader(open(), o);
  const Batch b = loader.next();
  const std::vector<float> px = b.images.to_vector<float>();
  const std::vector<int64_t> labels = b.labels.to_vector<int64_t>();
  for (size_t k = 0; k < b.indices.size(); ++k) {
    const int64_t i = b.indices[k];
    BOOST_TEST(labels[k] == i % 4);
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          const float expected = (pattern_pixel(i, y, x, ch) / 255.f - o.mean[size_t(ch)]) / o.std[size_t(ch)];
          BOOST_TEST(px[((k * c + ch) * h + y) * w + x] == expected, boost::test_tools::tolerance(1e-5f));
        }
  }
  BOOST_TEST(b.captions.empty());  // no captions, no templates
  o.mean = {0.f, 0.f, 0.f};
  BOOST_CHECK_THROW(Loader(open(), o), Error);
}

BOOST_AUTO_TEST_CASE(same_seed_same_batches_whatever_the_prefetch) {
  Loader a(open(), options(16, 3, 0)), b(open(), options(16, 3, 1)), d(open(), options(16, 3, 5));
  for (int i = 0; i < 20; ++i) {
    const Batch x = a.next(), y = b.next(), z = d.next();
    BOOST_TEST(same_batch(x, y));
    BOOST_TEST(same_batch(x, z));
    BOOST_TEST(same_batch(x, a.make_batch(x.epoch, x.position)));
  }
  Loader other(open(), options(16, 4));
  BOOST_TEST(Loader(open(), options(16, 3)).next().indices != other.next().indices);
}

BOOST_AUTO_TEST_CASE(restore_mid_epoch_continues_identically) {
  LoaderOptions o = options(10);
  o.augment.hflip = true;
  o.augment.crop_padding = 1;
  Loader reference(open(), o);
  const std::vector<Batch> expected = take(reference, 30);  // crosses two epoch boundaries
  for (int stop : {0, 4, 10, 11, 17}) {
    LoaderState saved;
    {
      Loader first(open(), o);
      take(first, stop);
      saved = first.state();
      BOOST_TEST(saved.epoch == stop / 11);
      BOOST_TEST(saved.position == stop % 11);
    }
    LoaderOptions other = o;
    other.seed = 999;  // the state's seed wins
    Loader resumed(open(), other);
    resumed.next();  // prefetching has started somewhere else
    resumed.restore(saved);
    for (int i = stop; i < 30; ++i) BOOST_TEST(same_batch(resumed.next(), expected[size_t(i)]), "batch " << i << " after stop " << stop);
  }
  Loader l(open(), o);
  BOOST_CHECK_THROW(l.restore({0, 11, 7}), Error);
}

// Micro-batches: a batch cut into parts gives the same rows, pixels and augmentation, in order;
// a loader taking some of the parts (a data-parallel process) reads just those.
BOOST_AUTO_TEST_CASE(parts_of_a_batch_are_its_rows_in_order) {
  LoaderOptions whole = options(10);
  whole.augment.hflip = true;
  Loader reference(open(), whole);
  const std::vector<Batch> batches = take(reference, 13);  // into the second epoch; batch 10 has 3 rows
  for (int64_t parts : {2, 3, 4}) {
    for (int64_t first = 0; first < parts; ++first) {
      LoaderOptions o = whole;
      o.parts = parts, o.take_first = first, o.take_count = std::min<int64_t>(2, parts - first);
      Loader loader(open(), o);
      for (const Batch& b : batches) {
        for (int64_t k = first; k < first + o.take_count; ++k) {
          const Batch part = loader.next();
          const int64_t rows = int64_t(b.indices.size()), lo = rows * k / parts, hi = rows * (k + 1) / parts;
          BOOST_TEST(part.part == k);
          BOOST_TEST(part.batch_rows == rows);
          BOOST_TEST(part.position == b.position);
          BOOST_TEST(part.indices == std::vector<int64_t>(b.indices.begin() + lo, b.indices.begin() + hi));
          if (hi > lo)
            BOOST_TEST(part.images.to_vector<float>() == b.images.slice(0, lo, hi).contiguous().to_vector<float>());
          else
            BOOST_TEST(part.images.size(0) == 0);  // 3 rows in 4 parts: one is empty
        }
      }
      // Between batches the state is the next batch's, as for whole batches.
      BOOST_TEST(loader.state().position == reference.state().position);
      if (o.take_count > 1) {
        loader.next();
        BOOST_CHECK_THROW(loader.state(), Error);  // between two parts of a batch
      }
    }
  }
  LoaderOptions bad = whole;
  bad.parts = 2, bad.take_first = 1, bad.take_count = 2;
  BOOST_CHECK_THROW(Loader(open(), bad), Error);
}

BOOST_AUTO_TEST_CASE(destroyed_mid_epoch_shuts_down_cleanly) {
  const auto ds = open();
  for (int round = 0; round < 50; ++round) {
    Loader loader(ds, options(7, uint64_t(round), 1 + round % 4));
    for (int i = 0; i < round % 5; ++i) loader.next();
  }  // each destructor joins its thread; a hang or crash fails the test run
  BOOST_TEST(ds.use_count() == 1);  // no thread still holds the dataset
}

BOOST_AUTO_TEST_CASE(chunk_local_shuffle) {
  // 1000 images of 768 bytes: chunks of 85 images.
  const std::string big = dir.file("big.h5");
  write_pattern_dataset(big, 1000, 16, 16, 3);
  const auto ds = Dataset::open(big, 0);
  const int64_t rows = ds->info().chunk_rows;
  BOOST_TEST(rows == 85);
  LoaderOptions o = options(50, 3);
  o.shuffle_window = 200;
  Loader loader(ds, o), again(Dataset::open(big), o);
  std::vector<std::vector<int64_t>> epochs;
  for (int e = 0; e < 2; ++e) {
    std::vector<int64_t> seen;
    for (int p = 0; p < loader.batches_per_epoch(); ++p) {
      const Batch b = loader.next();
      BOOST_TEST(same_batch(b, again.next()));  // deterministic, and out of core == in memory
      // A batch lies inside one window of 200, which spans at most 200/85 + 2 chunks.
      std::set<int64_t> chunks;
      for (int64_t i : b.indices) chunks.insert(i / rows);
      BOOST_TEST(chunks.size() <= 4u);
      seen.insert(seen.end(), b.indices.begin(), b.indices.end());
    }
    epochs.push_back(seen);
    std::sort(seen.begin(), seen.end());
    std::vector<int64_t> all(1000);
    std::iota(all.begin(), all.end(), 0);
    BOOST_TEST(seen == all);  // still every index exactly once
  }
  BOOST_TEST(epochs[0] != epochs[1]);
  // Shuffled inside chunks too: few neighbours in file order stay neighbours.
  int64_t in_order = 0;
  for (size_t k = 1; k < epochs[0].size(); ++k) in_order += epochs[0][k] == epochs[0][k - 1] + 1;
  BOOST_TEST(in_order < 100);
  o.shuffle_window = -1;
  BOOST_CHECK_THROW(Loader(ds, o), Error);
}

BOOST_AUTO_TEST_CASE(out_of_core_gives_the_same_batches) {
  Loader in_memory(open(), options(9, 5)), on_disk(open(100), options(9, 5));
  BOOST_TEST(!on_disk.dataset().info().images_in_memory);
  for (int i = 0; i < 25; ++i) BOOST_TEST(same_batch(in_memory.next(), on_disk.next()));
}

BOOST_AUTO_TEST_CASE(augmentation_is_deterministic_and_correct) {
  LoaderOptions o = options(10, 11);
  o.augment.hflip = true;
  o.augment.crop_padding = 2;
  Loader a(open(), o), b(open(), o);
  LoaderOptions other_batching = o;
  other_batching.batch_size = 7;
  other_batching.shuffle = false;
  Loader rebatched(open(), other_batching);
  // Augmentation of (epoch 0, index i) from the unshuffled loader with other batch size.
  std::map<int64_t, std::vector<float>> by_index;
  for (int p = 0; p < rebatched.batches_per_epoch(); ++p) {
    const Batch batch = rebatched.next();
    const std::vector<float> px = batch.images.to_vector<float>();
    for (size_t k = 0; k < batch.indices.size(); ++k)
      by_index[batch.indices[k]].assign(px.begin() + k * (c * h * w), px.begin() + (k + 1) * (c * h * w));
  }
  int flipped = 0, shifted = 0;
  for (int p = 0; p < a.batches_per_epoch(); ++p) {
    const Batch x = a.next(), y = b.next();
    BOOST_TEST(same_batch(x, y));
    const std::vector<float> px = x.images.to_vector<float>();
    for (size_t k = 0; k < x.indices.size(); ++k) {
      const int64_t i = x.indices[k];
      const std::vector<float> mine(px.begin() + k * (c * h * w), px.begin() + (k + 1) * (c * h * w));
      BOOST_TEST(mine == by_index[i]);  // depends on (seed, epoch, index), not on batching
      // The sample must be the source, maybe mirrored, shifted by (dy, dx) in [-2, 2] with zero fill.
      bool found = false;
      for (int flip = 0; flip < 2 && !found; ++flip)
        for (int64_t dy = -2; dy <= 2 && !found; ++dy)
          for (int64_t dx = -2; dx <= 2 && !found; ++dx) {
            bool match = true;
            for (int64_t ch = 0; ch < c && match; ++ch)
              for (int64_t yy = 0; yy < h && match; ++yy)
                for (int64_t xx = 0; xx < w && match; ++xx) {
                  const int64_t sy = yy + dy, sx = (flip ? w - 1 - xx : xx) + dx;
                  const float v = sy < 0 || sy >= h || sx < 0 || sx >= w ? 0.f : pattern_pixel(i, sy, sx, ch) / 255.f;
                  match = std::abs(mine[size_t((ch * h + yy) * w + xx)] - v) < 1e-6f;
                }
            if (match) found = true, flipped += flip, shifted += (dy != 0 || dx != 0);
          }
      BOOST_TEST(found, "sample " << i << " is not a flipped/shifted crop of its source");
    }
  }
  BOOST_TEST(flipped > 10);  // about half of 103
  BOOST_TEST(flipped < 93);
  BOOST_TEST(shifted > 50);  // 24 of 25 offsets shift
  // The next epoch draws afresh.
  const Batch e1 = a.next();
  BOOST_TEST(e1.epoch == 1);
}

// A file of clips ([N,F,H,W,C]): batches of [B,F,C,H,W], each clip flipped and cropped as one.
BOOST_AUTO_TEST_CASE(clips_are_batched_whole_and_augmented_as_one) {
  constexpr int64_t clips = 20, frames = 3;
  const std::string clip_path = dir.file("clips.h5");
  // Frame f of clip i is pattern image i * frames + f.
  const std::vector<uint8_t> pixels = pattern_images(clips * frames, h, w, c);
  h5::write_atomically(clip_path, [&](hid_t file) {
    h5::RowWriter images(file, "images", H5T_STD_U8LE, {hsize_t(clips), hsize_t(frames), hsize_t(h), hsize_t(w), hsize_t(c)}, clip_path, true);
    images.write(H5T_NATIVE_UINT8, 0, hsize_t(clips), pixels.data());
  });
  LoaderOptions o = options(6, 3, 0);
  o.augment.hflip = true;
  o.augment.crop_padding = 2;
  Loader a(Dataset::open(clip_path, 1LL << 30, true), o), b(Dataset::open(clip_path, 1LL << 30, true), o);
  const int64_t frame_values = c * h * w;
  int flipped = 0, shifted = 0;
  for (int p = 0; p < a.batches_per_epoch(); ++p) {
    const Batch x = a.next(), y = b.next();
    BOOST_TEST(same_batch(x, y));
    const int64_t batch = int64_t(x.indices.size());
    BOOST_TEST_REQUIRE((x.images.shape() == Shape{batch, frames, c, h, w}));
    const std::vector<float> px = x.images.to_vector<float>();
    for (int64_t k = 0; k < batch; ++k) {
      const int64_t i = x.indices[size_t(k)];
      // The one (flip, dy, dx) that makes every frame: its own source frame, so transformed.
      int found = 0;
      for (int flip = 0; flip < 2; ++flip)
        for (int64_t dy = -2; dy <= 2; ++dy)
          for (int64_t dx = -2; dx <= 2; ++dx) {
            bool match = true;
            for (int64_t f = 0; f < frames && match; ++f)
              for (int64_t ch = 0; ch < c && match; ++ch)
                for (int64_t yy = 0; yy < h && match; ++yy)
                  for (int64_t xx = 0; xx < w && match; ++xx) {
                    const int64_t sy = yy + dy, sx = (flip ? w - 1 - xx : xx) + dx;
                    const float v = sy < 0 || sy >= h || sx < 0 || sx >= w ? 0.f : pattern_pixel(i * frames + f, sy, sx, ch) / 255.f;
                    match = std::abs(px[size_t((k * frames + f) * frame_values + (ch * h + yy) * w + xx)] - v) < 1e-6f;
                  }
            if (match && !found) flipped += flip, shifted += (dy != 0 || dx != 0);
            found += match;
          }
      BOOST_TEST(found >= 1, "clip " << i << ": its frames are not one flip and crop of its source frames");
    }
  }
  BOOST_TEST(flipped > 2);
  BOOST_TEST(flipped < 18);
  BOOST_TEST(shifted > 10);
}

BOOST_AUTO_TEST_CASE(caption_templates_from_class_names) {
  LoaderOptions o = options(20, 2);
  o.caption_templates = {"a photo of a {}.", "a {} picture"};
  Loader loader(open(), o);
  std::set<std::string> used;
  for (int p = 0; p < 3; ++p) {
    const Batch b = loader.next();
    BOOST_TEST(b.captions.size() == b.indices.size());
    for (size_t k = 0; k < b.indices.size(); ++k) {
      const std::string name = "class" + std::to_string(b.indices[k] % 4);
      const std::string& cap = b.captions[k];
      BOOST_TEST((cap == "a photo of a " + name + "." || cap == "a " + name + " picture"), cap);
      used.insert(cap.substr(0, 3));  // "a p" or "a c"
    }
  }
  BOOST_TEST(used.size() == 2u);  // both templates get picked
}

BOOST_AUTO_TEST_CASE(class_names_option_renames_the_classes_in_captions) {
  LoaderOptions o = options(20, 2);
  o.caption_templates = {"a {}"};
  o.class_names = {"zero", "one", "two", "three"};
  Loader loader(open(), o);
  const Batch b = loader.next();
  for (size_t k = 0; k < b.indices.size(); ++k)
    BOOST_TEST(b.captions[k] == "a " + o.class_names[size_t(b.indices[k] % 4)]);
  // One name per class of the set, or a clear error naming the file.
  o.class_names = {"zero", "one", "two"};
  BOOST_CHECK_EXCEPTION(Loader(open(), o), std::exception, [](const std::exception& e) {
    const std::string m = e.what();
    return m.find("class_names has 3 names but the data set has 4 classes") != std::string::npos &&
           m.find(".h5") != std::string::npos;
  });
}

BOOST_AUTO_TEST_CASE(stored_captions_win_over_templates) {
  const std::string path2 = dir.file("captioned.h5");
  write_pattern_dataset(path2, 12, 2, 2, 1, 2, true);
  LoaderOptions o = options(5, 2);
  o.caption_templates = {"a photo of a {}."};
  Loader loader(Dataset::open(path2), o);
  const Batch b = loader.next();
  for (size_t k = 0; k < b.indices.size(); ++k) BOOST_TEST(b.captions[k] == "caption " + std::to_string(b.indices[k]));
}

BOOST_AUTO_TEST_SUITE_END()
