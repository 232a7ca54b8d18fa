#include "data/loader.h"

#include <algorithm>
#include <utility>

#include "autograd/error.h"
#include "autograd/random.h"
#include "data/scene_text.h"

namespace tessera::data {
namespace {

// Philox counter streams, kept apart by the high counter word.
constexpr uint64_t kShuffleStream = 1;
constexpr uint64_t kSampleStream = 2;

// The random choices for one sample in one epoch: a function of (seed, epoch, index) only.
struct SampleDraw {
  bool flip;
  int64_t dy, dx;  // crop offsets in [0, 2 * padding]
  uint32_t template_word;
};

SampleDraw draw_for(uint64_t seed, int64_t epoch, int64_t index, const Augment& augment) {
  uint32_t w[4];
  philox4x32(seed, (kSampleStream << 48) ^ uint64_t(epoch), uint64_t(index), w);
  const uint64_t span = uint64_t(2 * augment.crop_padding + 1);
  return {augment.hflip && (w[0] & 1u), int64_t(w[1] % span), int64_t(w[2] % span), w[3]};
}

std::string fill_template(const std::string& templ, const std::string& name) {
  const size_t at = templ.find("{}");
  return at == std::string::npos ? templ : templ.substr(0, at) + name + templ.substr(at + 2);
}

// The ground truth and text of scene files, mirrored for the flipped samples: x -> W - x for
// boxes (pixel edges), "left" <-> "right" in the text (data/scene_text.h defines places so that
// this is exact). Captions were picked already; they are mirrored here too. A clip's objects are
// [F, K] per sample, every frame mirrored with the sample.
void add_scene_fields(const Dataset& dataset, const std::vector<bool>& flipped, Batch& batch) {
  const DatasetInfo& info = dataset.info();
  const int64_t b = int64_t(batch.indices.size());
  auto mirrored = [&](int64_t k, const std::string& text) { return flipped[size_t(k)] ? mirror_text(text) : text; };
  if (info.has_captions && info.has_objects)
    for (int64_t k = 0; k < b; ++k) {
      batch.captions[size_t(k)] = mirrored(k, batch.captions[size_t(k)]);
      for (std::string& c : batch.all_captions[size_t(k)]) c = mirrored(k, c);
    }
  if (info.has_objects) {
    const int64_t K = info.max_objects, F = info.frames;
    const bool clips = F > 1;
    batch.boxes = Tensor::zeros(clips ? Shape{b, F, K, 4} : Shape{b, K, 4}, DType::f32);
    batch.object_classes = Tensor::full(clips ? Shape{b, F, K} : Shape{b, K}, -1.0, DType::i64);
    batch.object_count = Tensor::empty(clips ? Shape{b, F} : Shape{b}, DType::i64);
    float* boxes = batch.boxes.data<float>();
    int64_t* classes = batch.object_classes.data<int64_t>();
    for (int64_t k = 0; k < b; ++k)
      for (int64_t f = 0; f < F; ++f) {
        const ObjectsView v = dataset.objects(batch.indices[size_t(k)], f);
        const int64_t row = k * F + f;  // of the [B * F] frames
        batch.object_count.data<int64_t>()[row] = v.count;
        for (int64_t o = 0; o < v.count; ++o) {
          const float* in = v.boxes + 4 * o;
          float* out = boxes + (row * K + o) * 4;
          const float width = float(info.width);
          if (flipped[size_t(k)]) out[0] = in[0], out[1] = width - in[3], out[2] = in[2], out[3] = width - in[1];
          else std::copy_n(in, 4, out);
          classes[row * K + o] = v.classes[o];
        }
      }
  }
  if (info.has_swapped_captions)
    for (int64_t k = 0; k < b; ++k) batch.swapped_captions.push_back(mirrored(k, dataset.swapped_caption(batch.indices[size_t(k)])));
  if (info.questions_per_image > 0) {
    const int64_t Q = info.questions_per_image;
    batch.question_types = Tensor::empty({b, Q}, DType::i64);
    for (int64_t k = 0; k < b; ++k) {
      const int64_t i = batch.indices[size_t(k)];
      std::vector<std::string> questions = dataset.questions(i), answers = dataset.answers(i);
      for (auto& q : questions) q = mirrored(k, q);
      for (auto& a : answers) a = mirrored(k, a);
      batch.questions.push_back(std::move(questions));
      batch.answers.push_back(std::move(answers));
      const std::vector<int32_t> types = dataset.question_types(i);
      for (int64_t q = 0; q < Q; ++q) batch.question_types.data<int64_t>()[k * Q + q] = types[size_t(q)];
    }
  }
}

}  // namespace

Loader::Loader(std::shared_ptr<Dataset> dataset, LoaderOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)) {
  if (!dataset_) fail("Loader: no dataset");
  const DatasetInfo& info = dataset_->info();
  const LoaderOptions& o = options_;
  if (o.batch_size < 1) fail("Loader for '{}': batch_size must be at least 1, got {}", info.path, o.batch_size);
  if (o.shuffle_window < 0) fail("Loader for '{}': shuffle_window must be >= 0, got {}", info.path, o.shuffle_window);
  if (o.prefetch < 0) fail("Loader for '{}': prefetch must be >= 0, got {}", info.path, o.prefetch);
  if (o.augment.crop_padding < 0)
    fail("Loader for '{}': crop_padding must be >= 0, got {}", info.path, o.augment.crop_padding);
  for (const auto* v : {&o.mean, &o.std})
    if (v->size() != 1 && int64_t(v->size()) != info.channels)
      fail("Loader for '{}': {} has {} values, expected 1 or one per channel ({})", info.path,
           v == &o.mean ? "mean" : "std", v->size(), info.channels);
  for (float s : o.std)
    if (!(s > 0)) fail("Loader for '{}': std values must be positive, got {}", info.path, s);
  if (info.has_objects && o.augment.crop_padding > 0)
    fail("Loader for '{}': crop_padding would move objects out of the scene and make its boxes, counts and text "
         "false; scene data sets allow hflip only (set crop_padding to 0)", info.path);
  if (o.caption_index >= 0 && info.has_captions && o.caption_index >= info.captions_per_image)
    fail("Loader for '{}': caption_index {} asked for, but the file has {} captions per image", info.path,
         o.caption_index, info.captions_per_image);
  if (o.text_context < 0 || o.text_context == 1)
    fail("Loader for '{}': text_context must be 0 (no token ids) or at least 2, got {}", info.path, o.text_context);
  if (!o.class_names.empty() && o.class_names.size() != info.class_names.size())
    fail("Loader for '{}': class_names has {} names but the data set has {} classes", info.path, o.class_names.size(),
         info.class_names.size());
  if (o.parts < 1 || o.take_first < 0 || o.take_count < 1 || o.take_first + o.take_count > o.parts)
    fail("Loader for '{}': parts {} 'take {} from {}' is not a range of the parts", info.path, o.parts, o.take_count,
         o.take_first);
  batches_per_epoch_ = o.drop_last ? info.size / o.batch_size : (info.size + o.batch_size - 1) / o.batch_size;
  if (batches_per_epoch_ == 0)
    fail("Loader for '{}': {} images make no full batch of {} with drop_last", info.path, info.size, o.batch_size);
  seed_ = cursor_.seed = o.seed;
  cursor_part_ = o.take_first;
  start_prefetch();
}

Loader::~Loader() { stop_prefetch(); }

std::vector<int64_t> Loader::epoch_order(int64_t epoch) const {
  const int64_t n = dataset_->size();
  if (!options_.shuffle) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
    return order;
  }
  Generator gen(seed_);
  // Each epoch owns a disjoint range of 2^40 counters: its permutation depends on (seed, epoch) only.
  gen.set_state(seed_, (kShuffleStream << 60) + (uint64_t(epoch) << 40));
  if (options_.shuffle_window == 0) return randperm(n, gen).to_vector<int64_t>();

  // Chunk-local: chunks in random order, then a shuffle inside each window of the result.
  const int64_t rows = std::max<int64_t>(dataset_->info().chunk_rows, 1);
  const int64_t chunks = (n + rows - 1) / rows;
  const std::vector<int64_t> chunk_order = randperm(chunks, gen).to_vector<int64_t>();
  std::vector<int64_t> order;
  order.reserve(size_t(n));
  for (int64_t c : chunk_order)
    for (int64_t i = c * rows; i < std::min(n, (c + 1) * rows); ++i) order.push_back(i);
  for (int64_t start = 0; start < n; start += options_.shuffle_window) {
    const int64_t len = std::min(options_.shuffle_window, n - start);
    const std::vector<int64_t> p = randperm(len, gen).to_vector<int64_t>();
    std::vector<int64_t> window(order.begin() + start, order.begin() + start + len);
    for (int64_t k = 0; k < len; ++k) order[size_t(start + k)] = window[size_t(p[size_t(k)])];
  }
  return order;
}

Batch Loader::make_batch(int64_t epoch, int64_t position, int64_t part) const {
  std::shared_ptr<const std::vector<int64_t>> order;
  {
    std::lock_guard lock(order_mutex_);
    if (order_epoch_ != epoch || !order_) {
      order_ = std::make_shared<const std::vector<int64_t>>(epoch_order(epoch));
      order_epoch_ = epoch;
    }
    order = order_;
  }
  const DatasetInfo& info = dataset_->info();
  int64_t start = position * options_.batch_size;
  const int64_t rows = std::min(options_.batch_size, info.size - start);
  int64_t b = rows;
  if (part >= 0) {
    if (part >= options_.parts) fail("Loader for '{}': part {} of a batch cut in {}", info.path, part, options_.parts);
    const int64_t lo = rows * part / options_.parts, hi = rows * (part + 1) / options_.parts;
    start += lo, b = hi - lo;
  }
  Batch batch;
  batch.epoch = epoch;
  batch.position = position;
  batch.part = std::max<int64_t>(part, 0);
  batch.batch_rows = rows;
  batch.indices.assign(order->begin() + start, order->begin() + start + b);

  const int64_t H = info.height, W = info.width, C = info.channels, F = info.frames, pixels = H * W * C;
  std::vector<uint8_t> raw(size_t(b * F * pixels));
  if (b > 0) dataset_->read_images(batch.indices, raw.data());

  // Per channel: value = pixel * scale + shift, with scale = 1/(255 std), shift = -mean/std.
  std::vector<float> scale(static_cast<size_t>(C)), shift(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    const float m = options_.mean.size() == 1 ? options_.mean[0] : options_.mean[size_t(c)];
    const float s = options_.std.size() == 1 ? options_.std[0] : options_.std[size_t(c)];
    scale[size_t(c)] = 1.f / (255.f * s);
    shift[size_t(c)] = -m / s;
  }
  batch.images = Tensor::empty(F > 1 ? Shape{b, F, C, H, W} : Shape{b, C, H, W}, DType::f32);
  float* out = batch.images.data<float>();
  const Augment& aug = options_.augment;
  const int64_t pad = aug.crop_padding;
  const bool pick_caption = info.captions_per_image > 1 && options_.caption_index < 0;
  const bool need_draws =
      aug.hflip || pad > 0 || pick_caption || (!info.has_captions && !options_.caption_templates.empty());
  std::vector<bool> flipped(size_t(b), false);
  std::vector<uint32_t> template_words(size_t(b), 0);
  for (int64_t k = 0; k < b; ++k) {
    // One draw per sample: every frame of a clip is flipped and cropped alike.
    SampleDraw d{false, pad, pad, 0};
    if (need_draws) d = draw_for(seed_, epoch, batch.indices[size_t(k)], aug);
    template_words[size_t(k)] = d.template_word;
    flipped[size_t(k)] = d.flip;
    const int64_t oy = d.dy - pad, ox = d.dx - pad;  // source row/column of output (0, 0)
    for (int64_t f = 0; f < F; ++f) {
      const uint8_t* src = raw.data() + (k * F + f) * pixels;
      float* dst = out + (k * F + f) * pixels;
      for (int64_t c = 0; c < C; ++c) {
        const float sc = scale[size_t(c)], sh = shift[size_t(c)];
        float* plane = dst + c * H * W;
        for (int64_t y = 0; y < H; ++y) {
          const int64_t sy = y + oy;
          float* row = plane + y * W;
          if (sy < 0 || sy >= H) {
            std::fill(row, row + W, sh);  // zero padding, normalised
            continue;
          }
          const uint8_t* srow = src + sy * W * C + c;
          if (!d.flip && ox == 0) {
            for (int64_t x = 0; x < W; ++x) row[x] = float(srow[x * C]) * sc + sh;
          } else {
            for (int64_t x = 0; x < W; ++x) {
              const int64_t sx = (d.flip ? W - 1 - x : x) + ox;
              row[x] = sx < 0 || sx >= W ? sh : float(srow[sx * C]) * sc + sh;
            }
          }
        }
      }
    }
  }

  if (info.has_labels) {
    batch.labels = Tensor::empty({b}, DType::i64);
    int64_t* lp = batch.labels.data<int64_t>();
    for (int64_t k = 0; k < b; ++k) lp[k] = dataset_->label(batch.indices[size_t(k)]);
  }
  if (info.has_captions) {
    for (int64_t k = 0; k < b; ++k) {
      const std::vector<std::string> all = dataset_->captions(batch.indices[size_t(k)]);
      const int64_t m = int64_t(all.size());
      const int64_t pick = options_.caption_index >= 0 ? options_.caption_index : template_words[size_t(k)] % m;
      batch.captions.push_back(all[size_t(pick)]);
      batch.all_captions.push_back(all);
    }
  } else if (info.has_labels && !options_.caption_templates.empty()) {
    const auto& templates = options_.caption_templates;
    const auto& names = options_.class_names.empty() ? info.class_names : options_.class_names;
    for (int64_t k = 0; k < b; ++k) {
      const std::string& templ = templates[template_words[size_t(k)] % templates.size()];
      batch.captions.push_back(fill_template(templ, names[size_t(dataset_->label(batch.indices[size_t(k)]))]));
    }
  }
  add_scene_fields(*dataset_, flipped, batch);
  if (options_.text_context > 0) {
    const ByteTokenizer tokenizer(options_.text_context);
    if (!batch.captions.empty()) batch.caption_tokens = tokenizer.encode_batch(batch.captions);
    std::vector<std::string> questions, answers;
    for (size_t k = 0; k < batch.questions.size(); ++k) {
      questions.insert(questions.end(), batch.questions[k].begin(), batch.questions[k].end());
      answers.insert(answers.end(), batch.answers[k].begin(), batch.answers[k].end());
    }
    if (!questions.empty()) {
      batch.question_tokens = tokenizer.encode_batch(questions);
      batch.answer_tokens = tokenizer.encode_batch(answers);
    }
  }
  return batch;
}

void Loader::advance(LoaderState& state, int64_t& part) const {
  if (++part < options_.take_first + options_.take_count) return;
  part = options_.take_first;
  if (++state.position == batches_per_epoch_) state.position = 0, ++state.epoch;
}

void Loader::start_prefetch() {
  produce_ = cursor_;
  produce_part_ = cursor_part_;
  stopping_ = false;
  failure_ = nullptr;
  ready_.clear();
  if (options_.prefetch > 0) thread_ = std::thread([this] { prefetch_loop(); });
}

void Loader::stop_prefetch() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
  ready_.clear();
}

void Loader::prefetch_loop() {
  std::unique_lock lock(mutex_);
  while (true) {
    changed_.wait(lock, [&] { return stopping_ || (int64_t(ready_.size()) < options_.prefetch && !failure_); });
    if (stopping_) return;
    const LoaderState target = produce_;
    const int64_t part = produce_part_;
    lock.unlock();
    Batch batch;
    std::exception_ptr error;
    try {
      batch = make_batch(target.epoch, target.position, whole_batches() ? -1 : part);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    if (error) {
      failure_ = error;
    } else {
      ready_.push_back(std::move(batch));
      advance(produce_, produce_part_);
    }
    changed_.notify_all();
  }
}

Batch Loader::next() {
  Batch batch;
  if (options_.prefetch == 0) {
    batch = make_batch(cursor_.epoch, cursor_.position, whole_batches() ? -1 : cursor_part_);
  } else {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return !ready_.empty() || failure_; });
    if (ready_.empty()) {
      // The thread failed making this batch: report it, and let a later next() retry it.
      std::exception_ptr error = std::exchange(failure_, nullptr);
      lock.unlock();
      changed_.notify_all();
      std::rethrow_exception(error);
    }
    batch = std::move(ready_.front());
    ready_.pop_front();
    lock.unlock();
    changed_.notify_all();
  }
  advance(cursor_, cursor_part_);
  return batch;
}

LoaderState Loader::state() const {
  if (cursor_part_ != options_.take_first)
    fail("Loader for '{}': its state was asked for between two parts of batch {}", dataset_->info().path,
         cursor_.position);
  return cursor_;
}

void Loader::restore(const LoaderState& state) {
  if (state.epoch < 0 || state.position < 0 || state.position >= batches_per_epoch_)
    fail("Loader for '{}': cannot restore to epoch {} batch {} (an epoch has {} batches)", dataset_->info().path,
         state.epoch, state.position, batches_per_epoch_);
  stop_prefetch();
  cursor_ = state;
  cursor_part_ = options_.take_first;
  seed_ = state.seed;
  {
    std::lock_guard lock(order_mutex_);
    order_epoch_ = -1;
    order_.reset();
  }
  start_prefetch();
}

}  // namespace tessera::data
