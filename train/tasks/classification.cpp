// Classification: a model maps images [B,C,H,W] to logits [B, classes] (nn::ImageToLogits); the loss compares
// logits with labels; metrics are top-1/top-5 accuracy and the mean loss.
#include <algorithm>
#include <cmath>

#include "autograd/engine.h"
#include "autograd/ops/losses.h"
#include "autograd/ops.h"
#include "nn/capabilities.h"
#include "train/task.h"

namespace tessera::train {
namespace {

const Tensor& labels_of(const data::Batch& batch) {
  if (!batch.labels.defined()) fail("classification needs labels, but the data set has none");
  return batch.labels;
}

class Classification : public Task {
 public:
  explicit Classification(LossFn loss) : loss_(std::move(loss)) {}

  Tensor training_loss(nn::Module& model, const data::Batch& batch) override {
    return loss_(classifier(model).logits(batch.images), batch);
  }

  // "loss" is the plain cross-entropy whatever the training loss smooths, so that it compares across
  // recipes (and with PyTorch's CrossEntropyLoss); the loss trained on is "smoothed_loss".
  void evaluate(nn::Module& model, const data::Batch& batch, std::vector<std::unique_ptr<Metric>>& metrics) override {
    const Tensor logits = classifier(model).logits(batch.images);
    const double plain = cross_entropy(logits, labels_of(batch)).item(), trained = loss_(logits, batch).item();
    for (auto& m : metrics) m->update(MetricInput{batch, logits, plain, trained});
  }

  std::vector<std::string> default_metrics() const override { return {"accuracy", "loss"}; }

 private:
  static nn::ImageToLogits& classifier(nn::Module& model) {
    auto* m = nn::capability<nn::ImageToLogits>(model);
    if (!m) fail("classification needs a model that maps images to class logits (nn::ImageToLogits)");
    return *m;
  }
  LossFn loss_;
};

// Fraction of samples whose label is among the k highest logits (ties count against).
class TopK : public HitRate {
 public:
  explicit TopK(int64_t k) : k_(k) {}
  void update(const MetricInput& in) override {
    const Tensor logits = in.prediction.contiguous().to(DType::f32);
    const std::vector<int64_t> labels = labels_of(in.batch).to_vector<int64_t>();
    const int64_t b = logits.size(0), c = logits.size(1);
    const float* x = logits.data<float>();
    for (int64_t i = 0; i < b; ++i) {
      const float target = x[i * c + labels[i]];
      int64_t above = 0;
      for (int64_t j = 0; j < c; ++j) above += x[i * c + j] > target || (x[i * c + j] == target && j < labels[i]);
      count(above < k_, 1);
    }
  }

 private:
  int64_t k_;
};

// Sample-weighted mean of the batches' losses: the plain objective, or the label-smoothed one.
class MeanLoss : public Metric {
 public:
  explicit MeanLoss(bool smoothed = false) : smoothed_(smoothed) {}
  void update(const MetricInput& in) override {
    const double loss = smoothed_ ? in.smoothed_loss : in.loss;
    if (smoothed_ && std::isnan(loss)) fail("eval.metrics: smoothed_loss is the label-smoothed loss of a classifier");
    const double n = double(in.batch.indices.empty() ? in.prediction.size(0) : int64_t(in.batch.indices.size()));
    sum_ += loss * n, count_ += n;
  }
  double value() const override { return count_ ? sum_ / count_ : 0; }
  bool higher_is_better() const override { return false; }
  std::vector<double> partial_sums() const override { return {sum_, count_}; }
  void set_partial_sums(const std::vector<double>& s) override { sum_ = s[0], count_ = s[1]; }

 private:
  bool smoothed_;
  double sum_ = 0, count_ = 0;
};

const Registration<TaskFactory> task{
    tasks(), {"classification", "images -> class logits", "", {}, [](LossFn loss) { return std::make_unique<Classification>(loss); }}};

const Registration<LossFactory> cross_entropy_loss{
    losses(),
    {"cross_entropy", "cross-entropy of logits against labels", "classification",
     {number("label_smoothing", 0, "weight moved from the true class to a uniform distribution", 0, 1)},
     [](const Section& s) -> LossFn {
       const double smoothing = s.number("label_smoothing");
       return [smoothing](const Tensor& logits, const data::Batch& batch) {
         return cross_entropy(logits, labels_of(batch), smoothing);
       };
     }}};

const Registration<MetricFactory> accuracy{
    metrics(), {"accuracy", "top-1 accuracy", "classification", {}, [] { return std::make_unique<TopK>(1); }}};
const Registration<MetricFactory> top5{
    metrics(), {"top5", "top-5 accuracy", "classification", {}, [] { return std::make_unique<TopK>(5); }}};
const Registration<MetricFactory> loss_metric{
    metrics(), {"loss", "mean loss (a classifier's: cross-entropy without label smoothing)", "", {},
                [] { return std::make_unique<MeanLoss>(); }}};
const Registration<MetricFactory> smoothed_loss{
    metrics(), {"smoothed_loss", "mean cross-entropy with the recipe's loss.label_smoothing (the loss trained on)",
                "classification", {}, [] { return std::make_unique<MeanLoss>(true); }}};

}  // namespace
}  // namespace tessera::train
