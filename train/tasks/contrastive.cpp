// Contrastive image-text training (CLIP, SigLIP): a batch of images and their captions goes
// through both towers and the model's own loss. Evaluation reports zero-shot accuracy (images
// classified by prompt-ensemble embeddings of the class names), in-batch retrieval recall@k
// both ways, and the loss.
#include <atomic>

#include "autograd/error.h"
#include "autograd/ops.h"
#include "nn/contrastive_metrics.h"
#include "train/models/clip.h"
#include "train/registry.h"

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

// What the contrastive metrics see of one evaluated batch.
struct ContrastiveBatch {
  const data::Batch& batch;
  Tensor images, texts;  // [B, E] embeddings
};

class ContrastiveMetric : public Metric {
 public:
  virtual void update(const ContrastiveBatch& in) = 0;
  void update(const MetricInput&) override { fail("contrastive metrics are fed by the contrastive task"); }
};

class Contrastive : public Task {
 public:
  Tensor training_loss(nn::Module& model, const data::Batch& batch) override {
    ClipModel& m = dual(model);
    // CLIP clamps the log scale after every optimizer step; clamping before the next use of
    // it is the same thing, and keeps the trainer free of per-model hooks.
    m.after_step();
    const auto tokens = tokenize(m, captions_of(batch));
    return m.loss(m.encode_image(batch.images), m.encode_text(tokens.ids, tokens.eos_index), batch.labels);
  }

  void evaluate(nn::Module& model, const data::Batch& batch, std::vector<std::unique_ptr<Metric>>& metrics) override {
    ClipModel& m = dual(model);
    const auto tokens = tokenize(m, captions_of(batch));
    const Tensor images = m.encode_image(batch.images), texts = m.encode_text(tokens.ids, tokens.eos_index);
    const double loss = m.loss(images, texts, batch.labels).item();
    // Zero-shot logits: cosine similarity of each image to each class's prompt ensemble.
    Tensor logits;
    if (!m.class_names.empty()) logits = matmul(l2_normalize_rows(images), m.class_embeddings(m.class_names).t());
    for (auto& metric : metrics) {
      if (auto* c = dynamic_cast<ContrastiveMetric*>(metric.get())) c->update(ContrastiveBatch{batch, images, texts});
      else if (logits.defined()) metric->update(MetricInput{batch, logits, loss});
      else metric->update(MetricInput{batch, images, loss});
    }
  }

  std::vector<std::string> default_metrics() const override { return {"zero_shot_accuracy", "i2t_r1", "t2i_r1", "loss"}; }

 private:
  data::TokenizedBatch tokenize(ClipModel& m, const std::vector<std::string>& captions) {
    data::TokenizedBatch t = m.tokenizer.encode_batch(captions);
    if (t.truncated > 0 && !warned_.exchange(true))
      fmt::print(stderr, "warning: {} of {} captions are longer than model.text.context {} and were cut "
                         "(warned once per run)\n", t.truncated, captions.size(), m.tokenizer.context());
    return t;
  }
  std::atomic<bool> warned_{false};
};

// Zero-shot top-1 accuracy: the task hands it cosine logits against the class prompts.
class ZeroShotAccuracy : public Metric {
 public:
  void update(const MetricInput& in) override {
    if (!in.batch.labels.defined()) fail("zero_shot_accuracy needs labels, but the data set has none");
    if (in.prediction.dim() != 2 || in.prediction.size(1) < 2)
      fail("zero_shot_accuracy needs the data set's class names (at least 2)");
    const std::vector<int64_t> p = argmax(in.prediction, 1).to_vector<int64_t>();
    const std::vector<int64_t> y = in.batch.labels.to_vector<int64_t>();
    for (size_t i = 0; i < p.size(); ++i) correct_ += p[i] == y[i];
    total_ += int64_t(p.size());
  }
  double value() const override { return total_ ? double(correct_) / double(total_) : 0; }
  bool higher_is_better() const override { return true; }

 private:
  int64_t correct_ = 0, total_ = 0;
};

// Retrieval recall@k within each evaluated batch (a hit is the caption's own image, or with
// labels any image of its class: template captions repeat, so pairs are only known up to class),
// averaged over batches weighted by their size.
class InBatchRecall : public ContrastiveMetric {
 public:
  InBatchRecall(bool image_to_text, int64_t k) : image_to_text_(image_to_text), k_(k) {}
  void update(const ContrastiveBatch& in) override {
    const nn::RecallAtK r = nn::retrieval_recall(in.images, in.texts, {k_}, in.batch.labels);
    const double n = double(in.images.size(0));
    sum_ += (image_to_text_ ? r.image_to_text[0] : r.text_to_image[0]) * n;
    count_ += n;
  }
  double value() const override { return count_ ? sum_ / count_ : 0; }
  bool higher_is_better() const override { return true; }

 private:
  bool image_to_text_;
  int64_t k_;
  double sum_ = 0, count_ = 0;
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

#define TESSERA_RECALL(name, i2t, k)                                                                           \
  const Registration<MetricFactory> name##_metric{                                                             \
      metrics(), {#name, (i2t ? "image->text recall@" #k " within each eval batch (by class when labelled)"    \
                              : "text->image recall@" #k " within each eval batch (by class when labelled)"), \
                  "contrastive", {}, [] { return std::make_unique<InBatchRecall>(i2t, k); }}};
TESSERA_RECALL(i2t_r1, true, 1)
TESSERA_RECALL(i2t_r5, true, 5)
TESSERA_RECALL(i2t_r10, true, 10)
TESSERA_RECALL(t2i_r1, false, 1)
TESSERA_RECALL(t2i_r5, false, 5)
TESSERA_RECALL(t2i_r10, false, 10)
#undef TESSERA_RECALL

}  // namespace
}  // namespace tessera::train
