#pragma once
// Batches from a Dataset: a seeded shuffle per epoch, uint8 -> normalised f32, optional
// augmentation, caption templates, and a background thread that prepares the next batches.
// Every batch is a pure function of (seed, epoch, position): the shuffle of epoch e is a Philox
// permutation keyed by (seed, e), and a sample's augmentation is keyed by (seed, e, dataset index).
// So the order and the pixels never depend on thread count or timing, and restore() resumes exactly.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "autograd/tensor.h"
#include "data/dataset.h"
#include "data/text_tokenizer.h"

namespace tessera::data {

// A clip (a file of [N,F,H,W,C] images) is augmented as one: all its frames get the same flip and crop.
struct Augment {
  bool hflip = false;        // flip left-right with probability 1/2
  int64_t crop_padding = 0;  // pad by this many zero pixels on each side, then crop H x W at random
};

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;
  // 0: a uniform shuffle of all images. > 0: chunk-local shuffle for sets read out of core: visit
  // the file's chunks in random order, then shuffle the images within consecutive windows of this
  // many images, so that each chunk is decoded about once per epoch instead of once per image.
  int64_t shuffle_window = 0;
  bool drop_last = false;  // drop the last, short batch of an epoch
  uint64_t seed = 0;
  std::vector<float> mean{0.f}, std{1.f};  // per channel (or one for all), on [0,1] pixels
  Augment augment;
  // e.g. "a photo of a {}." — used (picked per sample at random) when a labelled set has no captions.
  std::vector<std::string> caption_templates;
  // The names put into the templates, one per class; empty: the data set's class_names. Prompt
  // names often differ from a data set's labels ("t-shirt" for "T-shirt/top").
  std::vector<std::string> class_names;
  int prefetch = 2;  // batches prepared ahead on a background thread; 0: prepare in next()
  // Files with M captions per image: the one a sample gets. -1: one at random per (seed, epoch,
  // image); k: always the k-th.
  int64_t caption_index = -1;
  // > 0: the batch also carries its captions, questions and answers as ids of the byte tokenizer
  // with this context (data/text_tokenizer.h).
  int64_t text_context = 0;
  // Micro-batches: each batch is cut into `parts` consecutive runs of rows (sizes differing by at
  // most one), and next() returns parts take_first .. take_first + take_count - 1 of each batch in
  // turn — gradient accumulation, and a data-parallel process's share (it reads only its rows).
  int64_t parts = 1, take_first = 0, take_count = 1;
};

struct Batch {
  Tensor images;                      // f32 [B,C,H,W], (pixel/255 - mean) / std; clips [B,F,C,H,W]
  Tensor labels;                      // i64 [B], undefined if the set has no labels
  std::vector<std::string> captions;  // B strings, or empty if the set has neither captions nor templates
  std::vector<int64_t> indices;       // dataset indices of the B samples
  // Scene files (docs/DATA.md), each as the sample's pixels show it: a flipped sample has flipped
  // boxes and "left" and "right" exchanged in all its text. Clip files (F > 1 frames a sample)
  // have the objects of every frame: boxes [B, F, K, 4], object_classes [B, F, K], object_count
  // [B, F]; a flipped clip has all its frames flipped, and its text mirrored once.
  Tensor boxes;           // f32 [B, K, 4] (y_min, x_min, y_max, x_max) in pixels; rows past the count are 0
  Tensor object_classes;  // i64 [B, K], -1 past the count
  Tensor object_count;    // i64 [B]
  std::vector<std::vector<std::string>> all_captions;  // [B][M]: every caption of each sample (references)
  std::vector<std::string> swapped_captions;          // B: the caption with two objects' places swapped, or ""; empty for clips
  std::vector<std::vector<std::string>> questions;    // [B][Q]
  std::vector<std::vector<std::string>> answers;      // [B][Q]
  Tensor question_types;                              // i64 [B, Q]
  // With LoaderOptions::text_context > 0: captions [B, context]; questions and answers
  // [B * Q, context], sample by sample.
  TokenizedBatch caption_tokens, question_tokens, answer_tokens;
  int64_t epoch = 0;
  int64_t position = 0;               // index of the batch in its epoch
  int64_t part = 0;                   // which micro-batch of it (LoaderOptions::parts), from 0
  int64_t batch_rows = 0;             // rows of the whole batch (this part has indices.size())
};

struct LoaderState {
  int64_t epoch = 0;
  int64_t position = 0;  // of the next batch next() returns
  uint64_t seed = 0;
};

class Loader {
 public:
  Loader(std::shared_ptr<Dataset> dataset, LoaderOptions options);
  ~Loader();  // stops and joins the prefetch thread
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Never ends: after the last batch of an epoch comes the first of the next. With parts, the
  // next of this loader's parts (all of one batch before the next batch).
  Batch next();
  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  LoaderState state() const;  // between batches: after the last part of one, before the next
  // Continues from `state` (seed included): the following batches equal an uninterrupted run's.
  void restore(const LoaderState& state);
  const Dataset& dataset() const { return *dataset_; }
  const LoaderOptions& options() const { return options_; }

  // The batch at (epoch, position), computed directly (what next() returns there). Thread-safe.
  // `part` >= 0 makes only that part of it (LoaderOptions::parts); -1 the whole batch.
  Batch make_batch(int64_t epoch, int64_t position, int64_t part = -1) const;
  // Dataset indices of epoch `epoch` in visiting order (all N, before drop_last).
  std::vector<int64_t> epoch_order(int64_t epoch) const;

 private:
  void start_prefetch();
  void stop_prefetch();
  void prefetch_loop();
  // The (epoch, position, part) after the given one, over this loader's parts.
  void advance(LoaderState& state, int64_t& part) const;
  bool whole_batches() const { return options_.parts == 1; }

  std::shared_ptr<Dataset> dataset_;
  LoaderOptions options_;
  int64_t batches_per_epoch_ = 0;
  uint64_t seed_ = 0;    // changed only by restore(), with the thread stopped
  LoaderState cursor_;  // next batch next() returns
  int64_t cursor_part_ = 0;

  // The prefetch thread fills `ready_` with the batches following cursor_, in order.
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Batch> ready_;
  std::exception_ptr failure_;
  LoaderState produce_;  // next batch the thread makes
  int64_t produce_part_ = 0;
  bool stopping_ = false;
  std::thread thread_;
  // Cache of the current epoch's order (built by whichever thread needs it first).
  mutable std::mutex order_mutex_;
  mutable int64_t order_epoch_ = -1;
  mutable std::shared_ptr<const std::vector<int64_t>> order_;
};

}  // namespace tessera::data
