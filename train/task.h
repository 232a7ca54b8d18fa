#pragma once
// A task is what a kind of model is trained for — classification now; reconstruction
// (VAE/VQ-VAE/FSQ) and contrastive image-text (CLIP/SigLIP) later. It owns the per-task logic the
// trainer must not know: how a batch goes through the model, what the loss sees, and what the
// metrics see. The trainer only calls these two methods.
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data/loader.h"
#include "nn/module.h"
#include "train/registry.h"

namespace tessera::train {

// What a metric sees for one evaluated batch.
struct MetricInput {
  const data::Batch& batch;
  const Tensor& prediction;  // the model's output (logits for classification)
  double loss;               // the batch's mean loss: the plain objective (cross-entropy without smoothing)
  double smoothed_loss = std::nan("");  // classification with label smoothing: the loss trained on
};

// Accumulates over the batches of one evaluation, then gives one number.
class Metric {
 public:
  virtual ~Metric() = default;
  virtual void update(const MetricInput& input) = 0;
  virtual double value() const = 0;
  virtual bool higher_is_better() const = 0;
  // For an evaluation shared out among data-parallel processes: what has been accumulated, as
  // numbers whose sums over the processes are the whole evaluation's, and setting those sums
  // back. Empty (the default) for a metric that needs the whole set at once; then every process
  // evaluates all of it.
  virtual std::vector<double> partial_sums() const { return {}; }
  virtual void set_partial_sums(const std::vector<double>& sums) { (void)sums; }
};

// A fraction of hits among trials (accuracies, recall, win rates): higher is better, and the two
// counts are its partial sums.
class HitRate : public Metric {
 public:
  double value() const override { return trials_ ? double(hits_) / double(trials_) : 0; }
  bool higher_is_better() const override { return true; }
  std::vector<double> partial_sums() const override { return {double(hits_), double(trials_)}; }
  void set_partial_sums(const std::vector<double>& s) override { hits_ = int64_t(s[0]), trials_ = int64_t(s[1]); }

 protected:
  void count(int64_t hits, int64_t trials) { hits_ += hits, trials_ += trials; }

 private:
  int64_t hits_ = 0, trials_ = 0;
};

// d loss from the model's prediction and the batch (labels, images, captions ... as the task needs).
using LossFn = std::function<Tensor(const Tensor& prediction, const data::Batch& batch)>;

class Task {
 public:
  virtual ~Task() = default;
  // Forward in training mode; the returned scalar keeps its graph for backward().
  virtual Tensor training_loss(nn::Module& model, const data::Batch& batch) = 0;
  // Forward for evaluation (the caller holds a NoGradGuard and set eval mode); feeds the metrics.
  virtual void evaluate(nn::Module& model, const data::Batch& batch, std::vector<std::unique_ptr<Metric>>& metrics) = 0;
  // Metrics reported when the recipe's eval.metrics is empty.
  virtual std::vector<std::string> default_metrics() const = 0;
  // After each evaluation of a training run (eval mode, no gradients): a task with something to
  // show, e.g. reconstruction grids, writes it into the run folder. `batch` is the first eval batch.
  virtual void write_samples(nn::Module& /*model*/, const data::Batch& /*batch*/, const std::string& /*run_dir*/,
                             int64_t /*step*/) {}
  // Evaluation shared out among data-parallel processes, for metrics fed from a store the task
  // keeps (generated texts, embeddings) rather than from sums (Metric::partial_sums): whether the
  // task can hand `metric`'s store between processes; this process's store as bytes; and, on
  // every process, the stores of all processes merged in rank order (process r evaluated the r-th
  // run of consecutive batches, so rank order is batch order). Tasks without such stores keep the
  // defaults; a metric no one can share makes every process evaluate the whole set.
  virtual bool shares_store_of(const Metric& /*metric*/) const { return false; }
  virtual std::string store_part(const std::vector<std::unique_ptr<Metric>>& /*metrics*/) const { return {}; }
  virtual void merge_store_parts(std::vector<std::unique_ptr<Metric>>& /*metrics*/, const std::vector<std::string>& /*parts*/) {}

  // Values worth following while training that are neither loss nor metric — a VQ codebook's
  // restarts so far, a dual encoder's temperature and bias — for the progress line and the train
  // entries of metrics.jsonl.
  virtual std::vector<std::pair<std::string, double>> training_state(const nn::Module& /*model*/) const { return {}; }
};

// The task family's registries: task (named by the model's registration), loss.type and
// eval.metrics. Each registers beside its task's code (train/tasks/).
using TaskFactory = std::function<std::unique_ptr<Task>(LossFn loss)>;
using LossFactory = std::function<LossFn(const Section& loss)>;
using MetricFactory = std::function<std::unique_ptr<Metric>()>;
Registry<TaskFactory>& tasks();
Registry<LossFactory>& losses();
Registry<MetricFactory>& metrics();

// Refuses a batch of images outside [0, 1] (models that take raw pixels: autoencoders with
// sigmoid decoders, a diffusion model's VAE), naming the range found and the recipe fix;
// `who` leads the message, e.g. "reconstruction needs".
void require_unit_pixels(const Tensor& images, const char* who);

}  // namespace tessera::train
