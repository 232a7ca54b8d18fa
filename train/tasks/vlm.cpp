// The vlm task: a vision-language model (train/models/vlm.h) trained on scene data sets with a
// mixture of tasks, each a prefix the model reads and a suffix it learns to write:
//   caption                      -> one of the scene's captions
//   detect bag ; coat            -> <loc y0><loc x0><loc y1><loc x1> bag ; <loc..>x4 coat ; ...
//   answer how many bags ...?    -> 2
//   count bag                    -> 2
// On clips of F frames (tessera data import scenes --frames F) the same tasks, with the clip's own
// captions and questions (which ask across frames); "count" counts over all frames, and detection
// names its frame: "detect in frame 3: bag ; coat" -> that frame's boxes.
// Evaluation generates (greedy unless model.generation.beam > 1) and scores the outputs: CIDEr-D
// and BLEU-4 of captions against all of a scene's captions, VQA exact match overall and per question
// type, count accuracy, COCO-style detection AP, and how much detection output could not be parsed.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <optional>

#include "autograd/error.h"
#include "autograd/ops.h"
#include "data/random_stream.h"
#include "data/scene_text.h"
#include "nn/caption_metrics.h"
#include "nn/detection_metrics.h"
#include "nn/location_tokens.h"
#include "train/byte_stream.h"
#include "train/models/vlm.h"
#include "train/task.h"
#include "train/tasks/shared_store.h"

namespace tessera::train {
namespace {

VlmModel& vlm(nn::Module& model) {
  auto* m = dynamic_cast<VlmModel*>(&model);
  if (!m) fail("the vlm task needs model.type vlm");
  return *m;
}

void require_scenes(const data::Batch& batch) {
  if (!batch.object_classes.defined() || batch.questions.empty() || batch.captions.empty())
    fail("the vlm task needs a scene data set with objects, captions and questions (tessera data import scenes)");
}

struct Example {
  std::string prefix, suffix;
};

// One scene's objects (or one frame's of a clip), as the sample's pixels show them.
struct SceneObjects {
  std::vector<int64_t> classes;
  std::vector<nn::Box> boxes;
};

// Frames per sample: object_classes is [B, K] for single scenes, [B, F, K] for clips.
int64_t frames_of(const data::Batch& batch) {
  return batch.object_classes.dim() == 3 ? batch.object_classes.size(1) : 1;
}

constexpr int64_t kAllFrames = -1;

// Sample k's objects in frame `frame` (0 for single scenes); kAllFrames: every frame's together
// (a single scene's own).
SceneObjects objects_of(const data::Batch& batch, int64_t k, int64_t frame = kAllFrames) {
  const int64_t frames = frames_of(batch), slots = batch.object_classes.size(-1);
  if (frame == kAllFrames && frames > 1) {
    SceneObjects all;
    for (int64_t f = 0; f < frames; ++f) {
      const SceneObjects one = objects_of(batch, k, f);
      all.classes.insert(all.classes.end(), one.classes.begin(), one.classes.end());
      all.boxes.insert(all.boxes.end(), one.boxes.begin(), one.boxes.end());
    }
    return all;
  }
  SceneObjects s;
  const int64_t row = k * frames + (frame == kAllFrames ? 0 : frame);
  const int64_t* cls = batch.object_classes.data<int64_t>() + row * slots;
  const float* box = batch.boxes.data<float>() + row * slots * 4;
  for (int64_t j = 0; j < slots; ++j)
    if (cls[j] >= 0) {
      s.classes.push_back(cls[j]);
      s.boxes.push_back({box[4 * j], box[4 * j + 1], box[4 * j + 2], box[4 * j + 3]});
    }
  return s;
}

std::vector<int64_t> present_classes(const SceneObjects& s) {  // distinct, in class-id order
  std::vector<int64_t> c = s.classes;
  std::sort(c.begin(), c.end());
  c.erase(std::unique(c.begin(), c.end()), c.end());
  return c;
}

// The frame an evaluation's detect prompt asks about: (dataset index mod F) of a clip; a scene's
// own objects (kAllFrames) otherwise.
int64_t evaluation_frame(const data::Batch& batch, int64_t k) {
  const int64_t frames = frames_of(batch);
  return frames > 1 ? batch.indices[size_t(k)] % frames : kAllFrames;
}

// "detect bag ; coat", or on a clip "detect in frame 3: bag ; coat" (frame from 0; kAllFrames: a single scene).
std::string detect_prompt(const std::vector<int64_t>& classes, const std::vector<std::string>& nouns,
                          int64_t frame = kAllFrames) {
  std::string p = frame == kAllFrames ? "detect" : fmt::format("detect in frame {}:", frame + 1);
  for (size_t i = 0; i < classes.size(); ++i) p += (i ? " ; " : " ") + nouns[size_t(classes[i])];
  return p;
}

// The target of a detect prompt: the classes' objects in prompt order, each class's top to bottom
// then left to right.
std::string detect_target(const SceneObjects& s, const std::vector<int64_t>& classes, const VlmModel& m) {
  std::vector<nn::LabelledBox> objects;
  for (int64_t c : classes) {
    std::vector<nn::Box> boxes;
    for (size_t j = 0; j < s.classes.size(); ++j)
      if (s.classes[j] == c) boxes.push_back(s.boxes[j]);
    std::sort(boxes.begin(), boxes.end(),
              [](const nn::Box& a, const nn::Box& b) { return std::tie(a.y_min, a.x_min) < std::tie(b.y_min, b.x_min); });
    for (const nn::Box& b : boxes) objects.push_back({m.object_names()[size_t(c)], b});
  }
  return nn::format_detections(objects, m.location_grid());
}

int64_t count_of(const SceneObjects& s, int64_t c) { return std::count(s.classes.begin(), s.classes.end(), c); }

enum class TaskKind { caption, detect, answer, count };

// A training example for sample k: the task drawn by the recipe's weights, its details drawn from
// a stream keyed by the sample's dataset index and epoch (so a resumed run draws the same).
Example training_example(const VlmModel& m, const data::Batch& batch, int64_t k) {
  data::RandomStream random(0x766c6d ^ uint64_t(batch.indices[size_t(k)]), uint64_t(batch.epoch));
  const VlmTaskWeights& w = m.task_weights();
  double u = random.uniform() * (w.caption + w.detect + w.answer + w.count);
  const TaskKind kind = (u -= w.caption) < 0 ? TaskKind::caption
                        : (u -= w.detect) < 0 ? TaskKind::detect
                        : (u -= w.answer) < 0 ? TaskKind::answer
                                              : TaskKind::count;
  const int64_t frames = frames_of(batch);
  const SceneObjects objects = objects_of(batch, k);  // a clip's: every frame's, counted together
  const auto& nouns = m.object_names();
  switch (kind) {
    case TaskKind::caption:
      return {"caption", batch.captions[size_t(k)]};
    case TaskKind::answer: {
      const auto& q = batch.questions[size_t(k)];
      const auto i = size_t(random.below(int64_t(q.size())));
      return {"answer " + q[i], batch.answers[size_t(k)][i]};
    }
    case TaskKind::count: {
      const std::vector<int64_t> present = present_classes(objects);
      const int64_t c = !present.empty() && random.chance(0.5) ? present[size_t(random.below(int64_t(present.size())))]
                                                               : random.below(int64_t(nouns.size()));
      return {"count " + nouns[size_t(c)], std::to_string(count_of(objects, c))};
    }
    case TaskKind::detect: {
      // The classes that are there (in one frame of a clip), and now and then one that is not
      // (whose answer is nothing), in random order.
      const int64_t frame = frames > 1 ? random.below(frames) : kAllFrames;
      const SceneObjects shown = objects_of(batch, k, frame);
      std::vector<int64_t> asked = present_classes(shown);
      for (int64_t c = 0; c < int64_t(nouns.size()); ++c)
        if (count_of(shown, c) == 0 && random.chance(0.1)) asked.push_back(c);
      for (size_t i = asked.size(); i > 1; --i) std::swap(asked[i - 1], asked[size_t(random.below(int64_t(i)))]);
      return {detect_prompt(asked, nouns, frame), detect_target(shown, asked, m)};
    }
  }
  return {};
}

// Token ids of a batch of examples, right-padded; targets are the suffix (and EOS), -1 elsewhere.
struct Sequences {
  Tensor ids, prefix_lengths, targets;
  int64_t truncated = 0;
};

constexpr int64_t kLengthMultiple = 16;

Sequences assemble(const VlmModel& m, const std::vector<Example>& examples) {
  const int64_t context = m.config().text_context, n = m.image_tokens_count();
  std::vector<std::vector<int64_t>> rows;
  std::vector<int64_t> prefix;
  Sequences s;
  int64_t longest = 0;
  for (const Example& e : examples) {
    std::vector<int64_t> seq = m.vocabulary().sequence(e.prefix, e.suffix, true);
    const int64_t prompt = int64_t(m.vocabulary().sequence(e.prefix, "", false).size());
    if (prompt >= context)
      fail("vlm task: the prompt '{}' is {} tokens, model.text_context {} must hold it and its answer", e.prefix, prompt,
           context);
    if (int64_t(seq.size()) > context) {
      seq.resize(size_t(context));
      seq.back() = nn::VlmVocabulary::kEos;
      ++s.truncated;
    }
    longest = std::max(longest, int64_t(seq.size()));
    prefix.push_back(n + prompt);
    rows.push_back(std::move(seq));
  }
  // Padded up to a multiple of 16: a handful of batch shapes instead of one per length, so the
  // caching allocator's free lists are reused from step to step instead of growing per shape.
  longest = std::min(context, (longest + kLengthMultiple - 1) / kLengthMultiple * kLengthMultiple);
  const auto b = int64_t(rows.size());
  std::vector<int64_t> ids(size_t(b * longest), nn::VlmVocabulary::kPad), targets(size_t(b * longest), -1);
  for (int64_t r = 0; r < b; ++r) {
    const auto& seq = rows[size_t(r)];
    std::copy(seq.begin(), seq.end(), ids.begin() + r * longest);
    for (int64_t t = prefix[size_t(r)] - n - 1; t + 1 < int64_t(seq.size()); ++t) targets[size_t(r * longest + t)] = seq[size_t(t + 1)];
  }
  s.ids = Tensor::from_vector(ids, {b, longest});
  s.targets = Tensor::from_vector(targets, {b, longest});
  s.prefix_lengths = Tensor::from_vector(prefix, {b});
  return s;
}

// Everything one evaluation generates and scores; the metrics read their figure from it.
class VlmEvaluation {
 public:
  std::vector<std::string> captions;
  std::vector<std::vector<std::string>> references;
  nn::VqaAccuracy vqa;
  int64_t counts_right = 0, counts_asked = 0;
  std::vector<nn::DetectedBox> detections;
  std::vector<nn::GroundTruthBox> truths;
  int64_t parse_failures = 0;
  int64_t classes = 0;
  double loss_sum = 0;
  int64_t loss_batches = 0;

  const nn::AveragePrecision& ap() const {
    if (!ap_) ap_ = nn::average_precision(detections, truths, classes);
    return *ap_;
  }

  // For an evaluation shared out among processes (Task::store_part): the parts, appended in
  // batch order, are what one process evaluating every batch would have kept.
  void write(ByteWriter& w) const {
    w.texts(captions);
    w.number(uint64_t(references.size()));
    for (const auto& r : references) w.texts(r);
    const auto tallies = vqa.tallies();
    w.number(uint64_t(tallies.size()));
    for (const auto& t : tallies) w.text(t.type), w.number(t.questions), w.number(t.correct);
    w.number(counts_right), w.number(counts_asked), w.number(parse_failures), w.number(classes);
    w.numbers(detections), w.numbers(truths);
    w.number(loss_sum), w.number(loss_batches);
  }
  void append(ByteReader& r) {
    for (std::string& c : r.texts()) captions.push_back(std::move(c));
    for (auto n = r.number<uint64_t>(); n > 0; --n) references.push_back(r.texts());
    for (auto n = r.number<uint64_t>(); n > 0; --n) {
      nn::VqaAccuracy::TypeTally t;
      t.type = r.text(), t.questions = r.number<int64_t>(), t.correct = r.number<int64_t>();
      vqa.add(t);
    }
    counts_right += r.number<int64_t>(), counts_asked += r.number<int64_t>();
    parse_failures += r.number<int64_t>(), classes = std::max(classes, r.number<int64_t>());
    for (const auto& d : r.numbers<nn::DetectedBox>()) detections.push_back(d);
    for (const auto& t : r.numbers<nn::GroundTruthBox>()) truths.push_back(t);
    loss_sum += r.number<double>(), loss_batches += r.number<int64_t>();
    ap_.reset();
  }

 private:
  mutable std::optional<nn::AveragePrecision> ap_;
};

class VlmMetric : public Metric {
 public:
  explicit VlmMetric(std::string name) : name_(std::move(name)) {}
  void update(const MetricInput&) override { fail("{} is fed by the vlm task", name_); }
  bool higher_is_better() const override { return name_ != "detection_parse_failures"; }
  double value() const override {
    const VlmEvaluation& e = *store;
    if (name_ == "caption_cider") return e.captions.empty() ? 0 : nn::cider_d(e.captions, e.references);
    if (name_ == "caption_bleu4") return e.captions.empty() ? 0 : nn::bleu4(e.captions, e.references);
    if (name_ == "vqa_accuracy") return e.vqa.overall();
    if (name_.rfind("vqa_accuracy_", 0) == 0) {
      const auto by_type = e.vqa.by_type();
      const auto it = by_type.find(name_.substr(13));
      return it == by_type.end() ? 0 : it->second;
    }
    if (name_ == "count_accuracy") return e.counts_asked ? double(e.counts_right) / double(e.counts_asked) : 0;
    if (name_ == "detection_map50") return e.truths.empty() ? 0 : e.ap().map50;
    if (name_ == "detection_map") return e.truths.empty() ? 0 : e.ap().map;
    if (name_ == "detection_parse_failures") return double(e.parse_failures);
    fail("unknown vlm metric {}", name_);
  }
  const std::string& name() const { return name_; }
  std::shared_ptr<VlmEvaluation> store;

 private:
  std::string name_;
};

// Rows `rows` of the batch's images (repeats allowed).
Tensor images_of(const data::Batch& batch, const std::vector<int64_t>& rows) {
  return index_select(batch.images, 0, Tensor::from_vector(rows, {int64_t(rows.size())}));
}

// Answers and counts are a few tokens; an untrained or confused model should not run to the end of
// the context on each of them.
nn::GenerationOptions capped(nn::GenerationOptions o, int64_t tokens) {
  o.max_new_tokens = o.max_new_tokens > 0 ? std::min(o.max_new_tokens, tokens) : tokens;
  return o;
}
constexpr int64_t kAnswerTokens = 32;
constexpr int64_t kCountTokens = 8;

class Vlm : public Task {
 public:
  Tensor training_loss(nn::Module& model, const data::Batch& batch) override {
    VlmModel& m = vlm(model);
    require_scenes(batch);
    std::vector<Example> examples;
    for (int64_t k = 0; k < int64_t(batch.indices.size()); ++k) examples.push_back(training_example(m, batch, k));
    const Sequences s = assemble(m, examples);
    warn_truncated(s, examples.size(), m);
    return m.loss(batch.images, s.ids, s.prefix_lengths, s.targets);
  }

  void evaluate(nn::Module& model, const data::Batch& batch, std::vector<std::unique_ptr<Metric>>& metrics) override {
    VlmModel& m = vlm(model);
    require_scenes(batch);
    std::shared_ptr<VlmEvaluation> store;
    std::vector<std::string> wanted;
    for (auto& metric : metrics)
      if (auto* v = dynamic_cast<VlmMetric*>(metric.get())) {
        if (!v->store) v->store = store ? store : std::make_shared<VlmEvaluation>();
        store = v->store;
        wanted.push_back(v->name());
      }
    auto wants = [&](const std::string& prefix) {
      return std::any_of(wanted.begin(), wanted.end(), [&](const std::string& w) { return w.rfind(prefix, 0) == 0; });
    };
    const double loss = evaluation_loss(m, batch);
    for (auto& metric : metrics)
      if (!dynamic_cast<VlmMetric*>(metric.get())) metric->update(MetricInput{batch, Tensor(), loss});
    if (!store) return;
    store->classes = int64_t(m.object_names().size());
    const nn::GenerationOptions options = m.default_generation();
    const auto b = int64_t(batch.indices.size());
    if (wants("caption_")) {
      std::vector<nn::TextPrompt> prompts;
      for (int64_t k = 0; k < b; ++k) prompts.push_back({k, "caption"});
      const auto out = m.generate_text(batch.images, prompts, options);
      for (int64_t k = 0; k < b; ++k) {
        store->captions.push_back(out[size_t(k)].text);
        store->references.push_back(batch.all_captions.empty() ? std::vector<std::string>{batch.captions[size_t(k)]}
                                                               : batch.all_captions[size_t(k)]);
      }
    }
    if (wants("vqa_")) answer_questions(m, batch, options, *store);
    if (wants("count_")) count_objects(m, batch, options, *store);
    if (wants("detection_")) detect_objects(m, batch, options, *store);
  }

  std::vector<std::string> default_metrics() const override {
    return {"caption_cider", "vqa_accuracy", "count_accuracy", "detection_map50", "loss"};
  }

  bool shares_store_of(const Metric& metric) const override { return dynamic_cast<const VlmMetric*>(&metric) != nullptr; }
  std::string store_part(const std::vector<std::unique_ptr<Metric>>& metrics) const override {
    return store_part_of<VlmMetric, VlmEvaluation>(metrics);
  }
  void merge_store_parts(std::vector<std::unique_ptr<Metric>>& metrics, const std::vector<std::string>& parts) override {
    merge_store_parts_of<VlmMetric, VlmEvaluation>(metrics, parts);
  }


 private:
  // Teacher-forced loss over a fixed set of examples per scene: the first caption, the detection of
  // what is there, the question of index (dataset index mod Q), the count of the first class present.
  // On clips: detection in frame (dataset index mod F), the count over all frames.
  double evaluation_loss(VlmModel& m, const data::Batch& batch) {
    std::vector<Example> examples;
    for (int64_t k = 0; k < int64_t(batch.indices.size()); ++k) {
      const SceneObjects objects = objects_of(batch, k);
      const std::vector<int64_t> present = present_classes(objects);
      const auto& q = batch.questions[size_t(k)];
      const size_t qi = size_t(batch.indices[size_t(k)]) % q.size();
      examples.push_back({"caption", batch.captions[size_t(k)]});
      const int64_t frame = evaluation_frame(batch, k);
      const SceneObjects shown = objects_of(batch, k, frame);
      const std::vector<int64_t> shown_classes = present_classes(shown);
      examples.push_back({detect_prompt(shown_classes, m.object_names(), frame), detect_target(shown, shown_classes, m)});
      examples.push_back({"answer " + q[qi], batch.answers[size_t(k)][qi]});
      const int64_t c = present.empty() ? 0 : present[0];
      examples.push_back({"count " + m.object_names()[size_t(c)], std::to_string(count_of(objects, c))});
    }
    std::vector<int64_t> rows;
    for (int64_t k = 0; k < int64_t(batch.indices.size()); ++k)
      for (int i = 0; i < 4; ++i) rows.push_back(k);
    const Sequences s = assemble(m, examples);
    return m.loss(images_of(batch, rows), s.ids, s.prefix_lengths, s.targets).item();
  }

  void answer_questions(VlmModel& m, const data::Batch& batch, const nn::GenerationOptions& options, VlmEvaluation& e) {
    std::vector<nn::TextPrompt> prompts;
    std::vector<std::string> answers, types;
    const auto& type_names = data::question_type_names();
    const std::vector<int64_t> qt = batch.question_types.to_vector<int64_t>();
    const auto q = int64_t(batch.questions[0].size());
    for (int64_t k = 0; k < int64_t(batch.indices.size()); ++k)
      for (int64_t i = 0; i < q; ++i) {
        prompts.push_back({k, "answer " + batch.questions[size_t(k)][size_t(i)]});
        answers.push_back(batch.answers[size_t(k)][size_t(i)]);
        const int64_t t = qt[size_t(k * q + i)];
        types.push_back(t >= 0 && t < int64_t(type_names.size()) ? type_names[size_t(t)] : "other");
      }
    const auto out = m.generate_text(batch.images, prompts, capped(options, kAnswerTokens));
    for (size_t i = 0; i < out.size(); ++i) e.vqa.add(out[i].text, answers[i], types[i]);
  }

  // Each class present, and one absent class: the (dataset index mod n)-th of the n absent ones
  // (on clips, present in any frame, counted over all).
  void count_objects(VlmModel& m, const data::Batch& batch, const nn::GenerationOptions& options, VlmEvaluation& e) {
    std::vector<nn::TextPrompt> prompts;
    std::vector<std::string> truths;
    const auto classes = int64_t(m.object_names().size());
    for (int64_t k = 0; k < int64_t(batch.indices.size()); ++k) {
      const SceneObjects objects = objects_of(batch, k);
      std::vector<int64_t> asked = present_classes(objects), absent;
      for (int64_t c = 0; c < classes; ++c)
        if (count_of(objects, c) == 0) absent.push_back(c);
      if (!absent.empty()) asked.push_back(absent[size_t(batch.indices[size_t(k)]) % absent.size()]);
      for (int64_t c : asked) {
        prompts.push_back({k, "count " + m.object_names()[size_t(c)]});
        truths.push_back(std::to_string(count_of(objects, c)));
      }
    }
    const auto out = m.generate_text(batch.images, prompts, capped(options, kCountTokens));
    for (size_t i = 0; i < out.size(); ++i) e.counts_right += nn::vqa_exact_match(out[i].text, truths[i]);
    e.counts_asked += int64_t(out.size());
  }

  // "detect" with the classes present (in class-id order); each parsed object scored by the mean
  // log-probability of its four location tokens. On clips, in frame (dataset index mod F), which is
  // then the image the boxes are scored on (index x F + frame).
  void detect_objects(VlmModel& m, const data::Batch& batch, const nn::GenerationOptions& options, VlmEvaluation& e) {
    std::vector<nn::TextPrompt> prompts;
    std::vector<SceneObjects> scenes;
    std::vector<int64_t> images;  // the id each sample's boxes are scored under
    const int64_t frames = frames_of(batch);
    for (int64_t k = 0; k < int64_t(batch.indices.size()); ++k) {
      const int64_t frame = evaluation_frame(batch, k);
      scenes.push_back(objects_of(batch, k, frame));
      images.push_back(batch.indices[size_t(k)] * frames + (frame == kAllFrames ? 0 : frame));
      prompts.push_back({k, detect_prompt(present_classes(scenes.back()), m.object_names(), frame)});
    }
    const auto out = m.generate_text(batch.images, prompts, options);
    for (size_t k = 0; k < out.size(); ++k) {
      const int64_t image = images[k];
      for (size_t j = 0; j < scenes[k].classes.size(); ++j) e.truths.push_back({image, scenes[k].classes[j], scenes[k].boxes[j]});
      const nn::ParsedDetections parsed = nn::parse_detections(out[k].text, m.object_names(), m.location_grid());
      e.parse_failures += parsed.malformed();
      const std::vector<double> scores = location_scores(m, out[k].tokens);
      for (size_t j = 0; j < parsed.objects.size(); ++j)
        e.detections.push_back({image, parsed.class_ids[j], parsed.objects[j].box, j < scores.size() ? scores[j] : 0.0});
    }
  }

  // Mean log p of each run of four consecutive location tokens, in output order (the parsed
  // objects' order when the output parses).
  static std::vector<double> location_scores(const VlmModel& m, const nn::Generation& g) {
    std::vector<double> scores;
    for (size_t i = 0; i + 3 < g.ids.size();) {
      bool four = true;
      for (size_t j = i; j < i + 4; ++j) four = four && m.vocabulary().is_location(g.ids[j]);
      if (!four) {
        ++i;
        continue;
      }
      scores.push_back((g.log_probs[i] + g.log_probs[i + 1] + g.log_probs[i + 2] + g.log_probs[i + 3]) / 4);
      i += 4;
    }
    return scores;
  }

  void warn_truncated(const Sequences& s, size_t examples, const VlmModel& m) {
    if (s.truncated > 0 && !warned_.exchange(true))
      fmt::print(stderr, "warning: {} of {} training targets are longer than model.text_context {} and were cut "
                         "(warned once per run)\n", s.truncated, examples, m.config().text_context);
  }
  std::atomic<bool> warned_{false};
};

const Registration<TaskFactory> task{
    tasks(), {"vlm", "image + prompt -> text: captions, detection as location tokens, VQA, counting (PaliGemma)", "", {},
              [](LossFn) { return std::make_unique<Vlm>(); }}};

const Registration<LossFactory> prefix_lm_loss{
    losses(),
    {"prefix_lm", "next-token cross-entropy on the suffix of each [image][prefix][suffix] sequence (the vlm model's own)",
     "vlm", {},
     [](const Section&) -> LossFn {
       return [](const Tensor&, const data::Batch&) -> Tensor { fail("loss.type prefix_lm is computed by the vlm model itself"); };
     }}};

#define TESSERA_VLM_METRIC(name, help)                                                                       \
  const Registration<MetricFactory> name##_metric{                                                           \
      metrics(), {#name, help, "vlm", {}, [] { return std::make_unique<VlmMetric>(#name); }}};
TESSERA_VLM_METRIC(caption_cider, "CIDEr-D of generated captions against all of each scene's captions")
TESSERA_VLM_METRIC(caption_bleu4, "corpus BLEU-4 of generated captions against all of each scene's captions")
TESSERA_VLM_METRIC(vqa_accuracy, "exact match of generated answers to the scenes' questions (normalised: lower case, no articles or punctuation)")
TESSERA_VLM_METRIC(vqa_accuracy_count, "vqa_accuracy on 'how many' questions")
TESSERA_VLM_METRIC(vqa_accuracy_existence, "vqa_accuracy on 'is there' questions")
TESSERA_VLM_METRIC(vqa_accuracy_place, "vqa_accuracy on 'where' / 'what is left of' questions")
TESSERA_VLM_METRIC(vqa_accuracy_size, "vqa_accuracy on size questions")
TESSERA_VLM_METRIC(vqa_accuracy_frame, "vqa_accuracy on 'in which frame' questions (clips)")
TESSERA_VLM_METRIC(vqa_accuracy_total, "vqa_accuracy on 'how many ... in all frames' questions (clips)")
TESSERA_VLM_METRIC(count_accuracy, "exact match of 'count CLASS' for each class present and one absent")
TESSERA_VLM_METRIC(detection_map50, "COCO-style AP at IoU 0.5 of 'detect' outputs, per class then averaged")
TESSERA_VLM_METRIC(detection_map, "COCO-style AP averaged over IoU 0.5:0.95, per class then averaged")
TESSERA_VLM_METRIC(detection_parse_failures, "segments of 'detect' outputs that do not parse (summed over the evaluation)")
#undef TESSERA_VLM_METRIC

}  // namespace
}  // namespace tessera::train
