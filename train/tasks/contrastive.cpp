// Contrastive image-text training (CLIP, SigLIP): a batch of images and their captions goes
// through both towers and the model's own loss. Evaluation reports zero-shot accuracy (images
// classified by prompt-ensemble embeddings of the class names), retrieval recall@k both ways
// over the whole evaluated set, a linear probe on a fixed split of it, and the loss.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <optional>

#include "autograd/error.h"
#include "autograd/ops.h"
#include "nn/contrastive_metrics.h"
#include "nn/linear_probe.h"
#include "nn/patch_targets.h"
#include "train/byte_stream.h"
#include "train/models/clip.h"
#include "train/task.h"
#include "train/tasks/shared_store.h"

namespace tessera::train {
namespace {

ClipModel& dual(nn::Module& model) {
  auto* m = dynamic_cast<ClipModel*>(&model);
  if (!m) fail("the contrastive task needs a dual encoder (model.type clip or siglip)");
  return *m;
}

const std::vector<std::string>& captions_of(const data::Batch& batch) {
  if (batch.captions.empty())
    fail("contrastive training needs captions: the data set has none, and data.caption_templates is empty");
  return batch.captions;
}

// What the whole-set contrastive metrics keep of one evaluation: every image and text embedding
// and label, in evaluation order, with the dataset index of each. The task appends each batch
// once; the metrics share the store and compute from it when asked for their value (retrieval
// once for all k, the probe once).
class EvalEmbeddings {
 public:
  void append(const data::Batch& batch, const Tensor& images, const Tensor& texts) {
    images_.push_back(images.detach().contiguous());
    texts_.push_back(texts.detach().contiguous());
    labelled_ = batch.labels.defined() && (images_.size() == 1 || labelled_);
    if (labelled_)
      for (int64_t y : batch.labels.to_vector<int64_t>()) labels_.push_back(y);
    indices_.insert(indices_.end(), batch.indices.begin(), batch.indices.end());
    captions_.insert(captions_.end(), batch.captions.begin(), batch.captions.end());
  }

  // For an evaluation shared out among processes (Task::store_part): the parts, appended in batch
  // order, are what one process evaluating every batch would have kept.
  void write(ByteWriter& w) const {
    w.number(uint64_t(images_.size()));
    for (size_t i = 0; i < images_.size(); ++i)
      for (const Tensor& t : {images_[i], texts_[i]}) {
        w.number(t.size(0)), w.number(t.size(1));
        w.numbers(t.to_vector<float>());
      }
    w.number(uint8_t(labelled_));
    w.numbers(labels_), w.numbers(indices_);
    w.texts(captions_);
  }
  void append(ByteReader& r) {
    const bool first = images_.empty();
    for (auto n = r.number<uint64_t>(); n > 0; --n)
      for (auto* list : {&images_, &texts_}) {
        const auto rows = r.number<int64_t>(), columns = r.number<int64_t>();
        list->push_back(Tensor::from_vector(r.numbers<float>(), {rows, columns}));
      }
    const bool labelled = r.number<uint8_t>() != 0;
    labelled_ = first ? labelled : labelled_ && labelled;
    for (int64_t y : r.numbers<int64_t>()) labels_.push_back(y);
    for (int64_t i : r.numbers<int64_t>()) indices_.push_back(i);
    for (std::string& c : r.texts()) captions_.push_back(std::move(c));
    recall_.reset(), probe_.reset();
  }

  // Recall@1, 5, 10 both ways over all N pairs, by class when labelled, else by caption: images
  // whose captions are the same text are the same item to retrieval ("a small bag." describes
  // many scenes, and no model could tell which of them a query meant).
  const nn::RecallAtK& recall() const {
    if (!recall_) {
      const int64_t n = int64_t(indices_.size());
      recall_ = n == 0 ? nn::RecallAtK{{1, 5, 10}, {0, 0, 0}, {0, 0, 0}}
                       : nn::retrieval_recall(concat(images_, 0), concat(texts_, 0), {1, 5, 10},
                                              Tensor::from_vector(labelled_ ? labels_ : caption_ids(), {n}));
    }
    return *recall_;
  }

  // Test accuracy of the linear probe fit on the even dataset indices, scored on the odd ones.
  double probe_accuracy() const {
    if (probe_) return *probe_;
    if (!labelled_) fail("linear_probe_accuracy needs labels, but the evaluation data set has none");
    const Tensor all = l2_normalize_rows(concat(images_, 0));
    std::vector<int64_t> fit_rows, score_rows, fit_labels, score_labels;
    int64_t classes = 2;
    for (size_t i = 0; i < indices_.size(); ++i) {
      const bool fit = indices_[i] % 2 == 0;
      (fit ? fit_rows : score_rows).push_back(int64_t(i));
      (fit ? fit_labels : score_labels).push_back(labels_[i]);
      classes = std::max(classes, labels_[i] + 1);
    }
    if (fit_rows.empty() || score_rows.empty())
      fail("linear_probe_accuracy needs at least one image with an even and one with an odd dataset index; the "
           "evaluation saw {}", indices_.size());
    auto rows = [&](const std::vector<int64_t>& r) { return index_select(all, 0, Tensor::from_vector(r, {int64_t(r.size())})); };
    auto labels = [](const std::vector<int64_t>& y) { return Tensor::from_vector(y, {int64_t(y.size())}); };
    probe_ = nn::linear_probe(rows(fit_rows), labels(fit_labels), rows(score_rows), labels(score_labels), classes)
                 .test_accuracy;
    return *probe_;
  }

 private:
  std::vector<Tensor> images_, texts_;  // [B, E] per batch
  // An id per distinct caption text, in order of first appearance.
  std::vector<int64_t> caption_ids() const {
    std::map<std::string, int64_t> ids;
    std::vector<int64_t> out;
    for (const std::string& c : captions_) out.push_back(ids.emplace(c, int64_t(ids.size())).first->second);
    return out;
  }

  std::vector<int64_t> labels_, indices_;
  std::vector<std::string> captions_;
  bool labelled_ = false;
  mutable std::optional<nn::RecallAtK> recall_;
  mutable std::optional<double> probe_;
};

// A metric computed from the whole evaluation's embeddings: the task attaches one shared store
// to all of them at the first batch of an evaluation (metrics are made afresh for each).
class WholeSetMetric : public Metric {
 public:
  void update(const MetricInput&) override { fail("whole-set contrastive metrics are fed by the contrastive task"); }
  bool higher_is_better() const override { return true; }
  std::shared_ptr<EvalEmbeddings> store;
};

// The fraction of images (with a swapped caption) whose true caption scores above the swapped
// one; chance is 1/2. The task scores the pairs, as only it holds the model.
class SwapAccuracy : public HitRate {
 public:
  void update(const MetricInput&) override { fail("swap_accuracy is fed by the contrastive task"); }
  void add(int64_t wins, int64_t pairs) { count(wins, pairs); }
};

// Which of the patch heads a patch metric scores: the class of what covers each patch, or of
// the object whose centre it holds (nn/patch_targets.h).
enum class PatchHead { cover, centre };

// A patch head's accuracy on the patches an object labels (most patches are background, which
// it learns first; the object ones are what detection and counting need), or on background ones.
class PatchClassAccuracy : public HitRate {
 public:
  PatchClassAccuracy(PatchHead head, bool objects) : head(head), objects_(objects) {}
  void update(const MetricInput&) override { fail("patch class accuracies are fed by the contrastive task"); }
  void add(const Tensor& predicted, const Tensor& targets, int64_t background) {
    const std::vector<int64_t> p = predicted.to_vector<int64_t>(), y = targets.to_vector<int64_t>();
    for (size_t i = 0; i < y.size(); ++i)
      if ((y[i] != background) == objects_) count(p[i] == y[i], 1);
  }
  // The metric's registered name, for messages.
  std::string name() const {
    if (head == PatchHead::cover) return objects_ ? "patch_class_accuracy" : "patch_background_accuracy";
    return objects_ ? "patch_centre_accuracy" : "patch_centre_background_accuracy";
  }

  const PatchHead head;

 private:
  bool objects_;
};

// Counting by the centre head: for every eval image and every class it holds, whether the patches
// predicted as that class's centres are exactly as many as its objects (what "count <class>"
// asks of the language model that reads these tokens).
class PatchCentreCountAccuracy : public HitRate {
 public:
  void update(const MetricInput&) override { fail("patch_centre_count_accuracy is fed by the contrastive task"); }
  void add(const Tensor& predicted, const Tensor& targets, int64_t background) {
    const std::vector<int64_t> p = predicted.to_vector<int64_t>(), y = targets.to_vector<int64_t>();
    const size_t n = size_t(predicted.size(1));
    std::vector<int64_t> predicted_count(static_cast<size_t>(background)), true_count(static_cast<size_t>(background));
    for (size_t first = 0; first < y.size(); first += n) {
      std::fill(predicted_count.begin(), predicted_count.end(), 0);
      std::fill(true_count.begin(), true_count.end(), 0);
      for (size_t i = first; i < first + n; ++i) {
        if (p[i] != background) ++predicted_count[size_t(p[i])];
        if (y[i] != background) ++true_count[size_t(y[i])];
      }
      for (size_t c = 0; c < true_count.size(); ++c)
        if (true_count[c] > 0) count(predicted_count[c] == true_count[c], 1);
    }
  }
};

class Contrastive : public Task {
 public:
  Tensor training_loss(nn::Module& model, const data::Batch& batch) override {
    ClipModel& m = dual(model);
    // CLIP clamps the log scale after every optimizer step; clamping before the next use of
    // it is the same thing, and keeps the trainer free of per-model hooks.
    m.after_step();
    const auto tokens = tokenize(m, captions_of(batch));
    if (!m.patch_head)
      return m.loss(m.encode_image(batch.images), m.encode_text(tokens.ids, tokens.eos_index), batch.labels);
    const auto image = m.encode_image_and_patches(batch.images);
    Tensor loss = m.loss(image.embedding, m.encode_text(tokens.ids, tokens.eos_index), batch.labels);
    const Tensor patches = m.patch_class_loss(image.patch_logits, patch_targets(m, batch));
    patch_loss_sum_ += patches.item(), ++patch_loss_steps_;
    loss = add(loss, mul(patches, m.config().patch_loss_weight));
    if (!image.centre_logits.defined()) return loss;
    const Tensor centres = m.patch_class_loss(image.centre_logits, centre_targets(m, batch));
    centre_loss_sum_ += centres.item();
    return add(loss, mul(centres, m.config().patch_centre_weight));
  }

  void evaluate(nn::Module& model, const data::Batch& batch, std::vector<std::unique_ptr<Metric>>& metrics) override {
    ClipModel& m = dual(model);
    const auto tokens = tokenize(m, captions_of(batch));
    // The patch heads run only for their metrics; their predictions and labels are made once a batch.
    const bool patch_metrics = std::any_of(metrics.begin(), metrics.end(), [](const auto& metric) {
      return dynamic_cast<const PatchClassAccuracy*>(metric.get()) != nullptr ||
             dynamic_cast<const PatchCentreCountAccuracy*>(metric.get()) != nullptr;
    });
    const auto encoded = patch_metrics ? m.encode_image_and_patches(batch.images)
                                       : ClipModel::ImageEncoding{m.encode_image(batch.images), Tensor(), Tensor()};
    Tensor cover_predicted, cover_labels, centre_predicted, centre_labels;
    if (encoded.patch_logits.defined())
      cover_predicted = argmax(encoded.patch_logits, 2), cover_labels = patch_targets(m, batch);
    if (encoded.centre_logits.defined())
      centre_predicted = argmax(encoded.centre_logits, 2), centre_labels = centre_targets(m, batch);
    const int64_t background = m.config().patch_classes;
    const Tensor images = encoded.embedding, texts = m.encode_text(tokens.ids, tokens.eos_index);
    const double loss = m.loss(images, texts, batch.labels).item();
    // Zero-shot logits: cosine similarity of each image to each class's prompt ensemble.
    Tensor logits;
    if (!m.class_names.empty()) logits = matmul(l2_normalize_rows(images), m.class_embeddings(m.class_names).t());
    std::shared_ptr<EvalEmbeddings> store;
    for (auto& metric : metrics) {
      if (auto* swap = dynamic_cast<SwapAccuracy*>(metric.get())) {
        score_swaps(m, batch, images, texts, *swap);
      } else if (auto* patch = dynamic_cast<PatchClassAccuracy*>(metric.get())) {
        const bool centre = patch->head == PatchHead::centre;
        if (!(centre ? centre_labels : cover_labels).defined())
          fail("{} needs the patch {}head (model.patch_head.{}), which this model has not", patch->name(),
               centre ? "centre " : "", centre ? "centre_weight" : "classes");
        patch->add(centre ? centre_predicted : cover_predicted, centre ? centre_labels : cover_labels, background);
      } else if (auto* count = dynamic_cast<PatchCentreCountAccuracy*>(metric.get())) {
        if (!centre_labels.defined())
          fail("patch_centre_count_accuracy needs the patch centre head (model.patch_head.centre_weight), which this "
               "model has not");
        count->add(centre_predicted, centre_labels, background);
      } else if (auto* w = dynamic_cast<WholeSetMetric*>(metric.get())) {
        if (!w->store) w->store = store ? store : std::make_shared<EvalEmbeddings>();
        store = w->store;
      } else if (logits.defined()) {
        metric->update(MetricInput{batch, logits, loss});
      } else {
        metric->update(MetricInput{batch, images, loss});
      }
    }
    if (store) store->append(batch, images, texts);
  }

  std::vector<std::string> default_metrics() const override { return {"zero_shot_accuracy", "i2t_r1", "t2i_r1", "loss"}; }

  bool shares_store_of(const Metric& metric) const override { return dynamic_cast<const WholeSetMetric*>(&metric) != nullptr; }
  std::string store_part(const std::vector<std::unique_ptr<Metric>>& metrics) const override {
    return store_part_of<WholeSetMetric, EvalEmbeddings>(metrics);
  }
  void merge_store_parts(std::vector<std::unique_ptr<Metric>>& metrics, const std::vector<std::string>& parts) override {
    merge_store_parts_of<WholeSetMetric, EvalEmbeddings>(metrics, parts);
  }


  // The learned temperature t = exp(t') (and SigLIP's bias b), which decide how sharp the logits are,
  // and the patch head's loss when the model has one.
  std::vector<std::pair<std::string, double>> training_state(const nn::Module& model) const override {
    const auto* m = dynamic_cast<const ClipModel*>(&model);
    if (m == nullptr) return {};
    std::vector<std::pair<std::string, double>> out{{"logit_scale", std::exp(m->logit_scale.item())}};
    if (m->logit_bias.defined()) out.emplace_back("logit_bias", m->logit_bias.item());
    // The patch head's cross-entropy, unweighted, averaged over the steps since the last report.
    if (patch_loss_steps_ > 0) {
      out.emplace_back("patch_loss", patch_loss_sum_ / double(patch_loss_steps_));
      if (m->patch_centre_head) out.emplace_back("centre_loss", centre_loss_sum_ / double(patch_loss_steps_));
      patch_loss_sum_ = 0, centre_loss_sum_ = 0, patch_loss_steps_ = 0;
    }
    return out;
  }

 private:
  // What the patch head is taught: each patch's class from the batch's boxes (nn/patch_targets.h).
  static Tensor patch_targets(ClipModel& m, const data::Batch& batch) {
    const nn::ViTConfig& v = scene_tower(m, batch);
    return nn::patch_class_targets(batch.boxes, batch.object_classes, v.image_size, v.image_size / v.patch_size,
                                   m.config().patch_classes);
  }
  // What the centre head is taught: the patch holding each object's box centre gets its class.
  static Tensor centre_targets(ClipModel& m, const data::Batch& batch) {
    const nn::ViTConfig& v = scene_tower(m, batch);
    return nn::patch_centre_targets(batch.boxes, batch.object_classes, v.image_size, v.image_size / v.patch_size,
                                    m.config().patch_classes);
  }
  // The image tower whose patches the heads label, once the batch is known to hold scenes' boxes.
  static const nn::ViTConfig& scene_tower(ClipModel& m, const data::Batch& batch) {
    if (!batch.boxes.defined() || batch.boxes.dim() != 3)
      fail("model.patch_head needs scene data (objects/boxes and objects/classes of single images, as 'tessera "
           "data import scenes' writes); this data set has none");
    return m.config().image;
  }

  // Each image against its caption and the same caption with two objects' places swapped.
  void score_swaps(ClipModel& m, const data::Batch& batch, const Tensor& images, const Tensor& texts, SwapAccuracy& swap) {
    if (batch.swapped_captions.empty())
      fail("swap_accuracy needs captions with two objects' places swapped (dataset 'captions_swapped', as "
           "'tessera data import scenes' writes); the evaluation data set has none");
    std::vector<int64_t> rows;
    std::vector<std::string> swapped;
    for (size_t k = 0; k < batch.swapped_captions.size(); ++k)
      if (!batch.swapped_captions[k].empty()) rows.push_back(int64_t(k)), swapped.push_back(batch.swapped_captions[k]);
    if (rows.empty()) return;
    const Tensor which = Tensor::from_vector(rows, {int64_t(rows.size())});
    const auto tokens = tokenize(m, swapped);
    const Tensor image = l2_normalize_rows(index_select(images, 0, which));
    const Tensor true_score = sum(mul(image, l2_normalize_rows(index_select(texts, 0, which))), {1});
    const Tensor swapped_score = sum(mul(image, l2_normalize_rows(m.encode_text(tokens.ids, tokens.eos_index))), {1});
    const std::vector<float> t = true_score.to_vector<float>(), f = swapped_score.to_vector<float>();
    int64_t wins = 0;
    for (size_t k = 0; k < t.size(); ++k) wins += t[k] > f[k];
    swap.add(wins, int64_t(t.size()));
  }

  data::TokenizedBatch tokenize(ClipModel& m, const std::vector<std::string>& captions) {
    data::TokenizedBatch t = m.tokenizer.encode_batch(captions);
    if (t.truncated > 0 && !warned_.exchange(true))
      fmt::print(stderr, "warning: {} of {} captions are longer than model.text.context {} and were cut "
                         "(warned once per run)\n", t.truncated, captions.size(), m.tokenizer.context());
    return t;
  }
  std::atomic<bool> warned_{false};
  // What training_state reports of the patch head; it reads and resets them.
  mutable double patch_loss_sum_ = 0, centre_loss_sum_ = 0;
  mutable int64_t patch_loss_steps_ = 0;
};

// Zero-shot top-1 accuracy: the task hands it cosine logits against the class prompts.
class ZeroShotAccuracy : public HitRate {
 public:
  void update(const MetricInput& in) override {
    if (!in.batch.labels.defined()) fail("zero_shot_accuracy needs labels, but the data set has none");
    if (in.prediction.dim() != 2 || in.prediction.size(1) < 2)
      fail("zero_shot_accuracy needs the data set's class names (at least 2)");
    const std::vector<int64_t> p = argmax(in.prediction, 1).to_vector<int64_t>();
    const std::vector<int64_t> y = in.batch.labels.to_vector<int64_t>();
    int64_t hits = 0;
    for (size_t i = 0; i < p.size(); ++i) hits += p[i] == y[i];
    count(hits, int64_t(p.size()));
  }
};

// Retrieval recall@k over the whole evaluated set (nn::retrieval_recall): a hit is the caption's
// own image, or with labels any image of its class (template captions repeat, so pairs are only
// known up to class).
class WholeSetRecall : public WholeSetMetric {
 public:
  WholeSetRecall(bool image_to_text, int64_t k) : image_to_text_(image_to_text), k_(k) {}
  double value() const override {
    const nn::RecallAtK& r = store->recall();
    const auto at = size_t(std::find(r.k.begin(), r.k.end(), k_) - r.k.begin());
    return image_to_text_ ? r.image_to_text.at(at) : r.text_to_image.at(at);
  }

 private:
  bool image_to_text_;
  int64_t k_;
};

// Linear-probe accuracy on a fixed split of the evaluation set: fitting on the training set at
// every evaluation would cost a pass over it; `tessera probe` does that.
class LinearProbeAccuracy : public WholeSetMetric {
 public:
  double value() const override { return store->probe_accuracy(); }
};

const Registration<TaskFactory> task{
    tasks(), {"contrastive", "image-text pairs -> joint embeddings (CLIP, SigLIP)", "", {},
              [](LossFn) { return std::make_unique<Contrastive>(); }}};

const Registration<LossFactory> contrastive_loss{
    losses(),
    {"contrastive", "the dual encoder's own loss: InfoNCE for model.type clip, sigmoid for siglip (settings are model keys)",
     "contrastive", {},
     [](const Section&) -> LossFn {
       return [](const Tensor&, const data::Batch&) -> Tensor {
         fail("loss.type contrastive is computed by the dual encoder itself");
       };
     }}};

const Registration<MetricFactory> zero_shot{
    metrics(), {"zero_shot_accuracy", "top-1 accuracy of zero-shot classification by class-name prompts", "contrastive", {},
                [] { return std::make_unique<ZeroShotAccuracy>(); }}};

#define TESSERA_RECALL(name, i2t, k)                                                                          \
  const Registration<MetricFactory> name##_metric{                                                            \
      metrics(), {#name, (i2t ? "image->text recall@" #k " over all eval pairs (by class when labelled, else by caption text)" \
                              : "text->image recall@" #k " over all eval pairs (by class when labelled, else by caption text)"), \
                  "contrastive", {}, [] { return std::make_unique<WholeSetRecall>(i2t, k); }}};
TESSERA_RECALL(i2t_r1, true, 1)
TESSERA_RECALL(i2t_r5, true, 5)
TESSERA_RECALL(i2t_r10, true, 10)
TESSERA_RECALL(t2i_r1, false, 1)
TESSERA_RECALL(t2i_r5, false, 5)
TESSERA_RECALL(t2i_r10, false, 10)
#undef TESSERA_RECALL

const Registration<MetricFactory> swap_accuracy{
    metrics(),
    {"swap_accuracy",
     "fraction of eval images whose caption scores above the same caption with two objects' places swapped "
     "(scene data sets; chance 0.5)",
     "contrastive", {}, [] { return std::make_unique<SwapAccuracy>(); }}};

const Registration<MetricFactory> patch_class_accuracy{
    metrics(),
    {"patch_class_accuracy",
     "accuracy of the patch head (model.patch_head) on the eval patches an object covers: the class of the "
     "smallest box holding the patch's centre",
     "contrastive", {}, [] { return std::make_unique<PatchClassAccuracy>(PatchHead::cover, true); }}};

const Registration<MetricFactory> patch_background_accuracy{
    metrics(),
    {"patch_background_accuracy", "accuracy of the patch head (model.patch_head) on the eval patches no object covers",
     "contrastive", {}, [] { return std::make_unique<PatchClassAccuracy>(PatchHead::cover, false); }}};

const Registration<MetricFactory> patch_centre_accuracy{
    metrics(),
    {"patch_centre_accuracy",
     "accuracy of the patch centre head (model.patch_head.centre_weight) on the eval patches that hold an object's "
     "box centre: that object's class",
     "contrastive", {}, [] { return std::make_unique<PatchClassAccuracy>(PatchHead::centre, true); }}};

const Registration<MetricFactory> patch_centre_background_accuracy{
    metrics(),
    {"patch_centre_background_accuracy",
     "accuracy of the patch centre head (model.patch_head.centre_weight) on the eval patches that hold no box centre",
     "contrastive", {}, [] { return std::make_unique<PatchClassAccuracy>(PatchHead::centre, false); }}};

const Registration<MetricFactory> patch_centre_count_accuracy{
    metrics(),
    {"patch_centre_count_accuracy",
     "over eval images and the classes each holds: the fraction where the patch centre head predicts exactly as many "
     "centres of the class as there are objects of it",
     "contrastive", {}, [] { return std::make_unique<PatchCentreCountAccuracy>(); }}};

const Registration<MetricFactory> linear_probe{
    metrics(),
    {"linear_probe_accuracy",
     "accuracy of a logistic-regression probe on the unit image embeddings of the eval set, fit on the images of "
     "even dataset index and scored on those of odd index (a fixed 50/50 split of data.eval; tessera probe fits "
     "on data.train)",
     "contrastive", {}, [] { return std::make_unique<LinearProbeAccuracy>(); }}};

}  // namespace
}  // namespace tessera::train
