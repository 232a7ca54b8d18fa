// Diffusion: a generative model of a data set's images (nn::LatentDiffusion: a DiT over a frozen
// VAE's latents) is trained to denoise, and evaluated by what it makes. The metrics:
//   loss          the denoising MSE on the eval images (steps and noise drawn from a fixed seed)
//   fd_vit        Fréchet distance between generated and real test images in the pooled features
//                 of a ViT classifier (model.evaluation.classifier) — FID's recipe in a feature space
//                 that knows this data set; fd_vit_floor is the same distance between training and
//                 test images (what a perfect generator would score with that many images)
//   sample_accuracy  how often the classifier assigns a class-conditional sample to its class
//   precision, recall  k-NN manifold precision and recall (Kynkäänniemi et al. 2019) in those features
// Samples are drawn once per evaluation with model.sampling's seed, so the same checkpoint always
// gives the same figures; after each evaluation of a run, samples/ gets a grid of them.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>

#include "autograd/engine.h"
#include "autograd/ops.h"
#include "data/dataset.h"
#include "data/image_io.h"
#include "data/png.h"
#include "nn/feature_statistics.h"
#include "train/models/latent_dit.h"
#include "train/task.h"
#include "train/trained_model.h"

namespace tessera::train {
namespace {

LatentDitModel& diffusion_model(nn::Module& model) {
  auto* m = dynamic_cast<LatentDitModel*>(&model);
  if (!m) fail("the diffusion task trains latent_dit models");
  return *m;
}

void check_batch(const data::Batch& batch) {
  require_unit_pixels(batch.images, "latent_dit's VAE takes");
  if (!batch.labels.defined()) fail("latent_dit is class-conditional: the data set needs labels");
}

// A classifier checkpoint's view of images in [0, 1]: its pooled features and its predicted class.
class FeatureClassifier {
 public:
  explicit FeatureClassifier(const std::string& path) : model_(TrainedModel::load(path)) {
    embedding_ = &model_.need<nn::ImageToEmbedding>("give image features (model.evaluation.classifier)");
    logits_ = &model_.need<nn::ImageToLogits>("classify images (model.evaluation.classifier)");
    const Section d = model_.recipe().section("data");
    mean_ = d.numbers("mean"), std_ = d.numbers("std");
  }
  const TrainedModel& model() const { return model_; }

  struct Output {
    Tensor features;                 // f64 [N, D]
    std::vector<int64_t> predicted;  // N
  };
  Output run(const Tensor& images) {
    NoGradGuard no_grad;
    const int64_t c = images.size(1);
    std::vector<double> m(static_cast<size_t>(c)), s(static_cast<size_t>(c));
    for (int64_t k = 0; k < c; ++k) {
      m[size_t(k)] = mean_.empty() ? 0 : mean_[size_t(mean_.size() == 1 ? 0 : k)];
      s[size_t(k)] = std_.empty() ? 1 : std_[size_t(std_.size() == 1 ? 0 : k)];
    }
    Output out;
    std::vector<Tensor> parts;
    constexpr int64_t kChunk = 500;
    for (int64_t start = 0; start < images.size(0); start += kChunk) {
      const int64_t n = std::min(kChunk, images.size(0) - start);
      Tensor x = images.slice(0, start, start + n).contiguous().clone();
      float* p = x.data<float>();
      const int64_t plane = x.size(2) * x.size(3);
      for (int64_t i = 0; i < n * c; ++i)
        for (int64_t j = 0; j < plane; ++j) p[i * plane + j] = float((p[i * plane + j] - m[size_t(i % c)]) / s[size_t(i % c)]);
      parts.push_back(embedding_->embed_images(x).to(DType::f64));
      const Tensor logits = logits_->logits(x).contiguous();
      const float* l = logits.data<float>();
      for (int64_t r = 0; r < n; ++r)
        out.predicted.push_back(int64_t(std::max_element(l + r * logits.size(1), l + (r + 1) * logits.size(1)) -
                                        (l + r * logits.size(1))));
    }
    out.features = parts.size() == 1 ? parts[0] : concat(parts, 0);
    return out;
  }

 private:
  TrainedModel model_;
  nn::ImageToEmbedding* embedding_ = nullptr;
  nn::ImageToLogits* logits_ = nullptr;
  std::vector<double> mean_, std_;
};

// What one evaluation gathers for the generation metrics.
struct GenerationStore {
  std::vector<Tensor> real_parts;  // classifier features of the first `samples` eval images
  int64_t real_count = 0;
  Tensor real_features, generated_features, train_features;
  double sample_accuracy = std::nan("");
  Tensor sample_images;  // a few per class, for the grid
  int64_t classes = 0;

  const Tensor& real() {
    if (!real_features.defined() && !real_parts.empty()) real_features = concat(real_parts, 0);
    return real_features;
  }
};

class GenerationMetric : public Metric {
 public:
  explicit GenerationMetric(std::string name) : name_(std::move(name)) {}
  const std::string& name() const { return name_; }
  void update(const MetricInput&) override {}
  double value() const override {
    // Without model.evaluation.classifier nothing was generated: null in metrics.jsonl and --json.
    if (!store || !store->generated_features.defined()) return std::nan("");
    GenerationStore& s = *store;
    if (s.real().size(0) < 2) fail("{}: the evaluation set gave fewer than 2 images", name_);
    if (name_ == "fd_vit") return nn::frechet_distance(s.generated_features, s.real());
    if (name_ == "fd_vit_floor") return nn::frechet_distance(s.train_features, s.real());
    if (name_ == "sample_accuracy") return s.sample_accuracy;
    const nn::PrecisionRecall pr = nn::knn_precision_recall(s.real(), s.generated_features, 3);
    return name_ == "precision" ? pr.precision : pr.recall;
  }
  bool higher_is_better() const override { return name_ != "fd_vit" && name_ != "fd_vit_floor"; }

  std::shared_ptr<GenerationStore> store;

 private:
  std::string name_;
};

class Diffusion : public Task {
 public:
  Tensor training_loss(nn::Module& model, const data::Batch& batch) override {
    check_batch(batch);
    return diffusion_model(model).denoising_loss(batch.images, batch.labels, default_generator());
  }

  void evaluate(nn::Module& model, const data::Batch& batch, std::vector<std::unique_ptr<Metric>>& metrics) override {
    LatentDitModel& m = diffusion_model(model);
    check_batch(batch);
    // The denoising loss at steps and noise fixed by the batch's first image, so it repeats.
    Generator gen(0x64696666ULL + uint64_t(batch.indices.empty() ? 0 : batch.indices[0]));
    const double loss = m.denoising_loss(batch.images, batch.labels, gen).item();
    std::shared_ptr<GenerationStore> store;
    for (auto& metric : metrics) {
      if (auto* g = dynamic_cast<GenerationMetric*>(metric.get())) {
        if (!g->store) g->store = store ? store : std::make_shared<GenerationStore>();
        store = g->store;
      } else {
        metric->update(MetricInput{batch, batch.images, loss});
      }
    }
    if (!store || m.evaluation().classifier.empty()) return;
    FeatureClassifier& classifier = classifier_for(m.evaluation().classifier);
    const int64_t wanted = m.evaluation().samples;
    if (!store->generated_features.defined()) generate(m, classifier, *store);
    // The first `wanted` eval images, in file order.
    std::vector<int64_t> rows;
    for (size_t k = 0; k < batch.indices.size(); ++k)
      if (batch.indices[k] < wanted && store->real_count < wanted) rows.push_back(int64_t(k)), ++store->real_count;
    if (!rows.empty()) {
      const Tensor picked = index_select(batch.images, 0, Tensor::from_vector(rows, {int64_t(rows.size())}));
      store->real_parts.push_back(classifier.run(picked).features);
    }
  }

  std::vector<std::string> default_metrics() const override {
    return {"loss", "fd_vit", "fd_vit_floor", "sample_accuracy", "precision", "recall"};
  }

  void write_samples(nn::Module& model, const data::Batch& batch, const std::string& run_dir, int64_t step) override {
    LatentDitModel& m = diffusion_model(model);
    (void)batch;
    // Eight samples per class, a row each, from the evaluation seed.
    std::vector<int64_t> labels;
    for (int64_t c = 0; c < m.num_classes(); ++c)
      for (int k = 0; k < 8; ++k) labels.push_back(c);
    Generator gen(m.evaluation().seed + 1);
    const Tensor images = m.generate_images(labels, m.default_sampling(), gen);
    const std::vector<uint8_t> pixels = data::to_pixels(images);
    const std::filesystem::path dir = std::filesystem::path(run_dir) / "samples";
    std::filesystem::create_directories(dir);
    const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
    data::write_image_grid((dir / fmt::format("samples_step_{:07}.png", step)).string(), pixels.data(), n, h, w, c, 8);
    data::write_image_grid((dir / "samples_last.png").string(), pixels.data(), n, h, w, c, 8);
  }

 private:
  FeatureClassifier& classifier_for(const std::string& path) {
    auto it = classifiers_.find(path);
    if (it == classifiers_.end()) {
      try {
        it = classifiers_.emplace(path, std::make_unique<FeatureClassifier>(path)).first;
      } catch (const Error& e) {
        fail("model.evaluation.classifier: {}", e.what());
      }
    }
    return *it->second;
  }

  // Class-conditional samples, an equal share per class, at the model's default sampling; and
  // the training images of the floor (the same for every evaluation of a run: kept).
  void generate(LatentDitModel& m, FeatureClassifier& classifier, GenerationStore& store) {
    const int64_t n = m.evaluation().samples, classes = m.num_classes();
    std::vector<int64_t> labels;
    for (int64_t i = 0; i < n; ++i) labels.push_back(i * classes / n);
    Generator gen(m.evaluation().seed);
    const Tensor images = m.generate_images(labels, m.default_sampling(), gen);
    const FeatureClassifier::Output out = classifier.run(images);
    store.generated_features = out.features;
    int64_t right = 0;
    for (int64_t i = 0; i < n; ++i) right += out.predicted[size_t(i)] == labels[size_t(i)];
    store.sample_accuracy = double(right) / double(n);
    store.classes = classes;
    const std::string key = m.evaluation().train_data + "#" + std::to_string(n);
    auto it = train_features_.find(key);
    if (it == train_features_.end()) {
      const auto set = data::Dataset::open(m.evaluation().train_data);
      const data::DatasetInfo& info = set->info();
      const int64_t count = std::min(n, info.size);
      std::vector<uint8_t> pixels(static_cast<size_t>(count * info.height * info.width * info.channels));
      set->read_range(0, count, pixels.data());
      const Tensor train_images = data::from_pixels(pixels.data(), count, info.height, info.width, info.channels);
      it = train_features_.emplace(key, classifier.run(train_images).features).first;
    }
    store.train_features = it->second;
  }

  std::map<std::string, std::unique_ptr<FeatureClassifier>> classifiers_;
  std::map<std::string, Tensor> train_features_;
};

const Registration<TaskFactory> task{
    tasks(), {"diffusion", "generate images: denoising diffusion over a VAE's soft tokens", "", {},
              [](LossFn) { return std::make_unique<Diffusion>(); }}};

const Registration<LossFactory> denoising_mse{
    losses(),
    {"denoising_mse", "mean squared error of the denoiser's prediction (noise or v) at a random step (latent_dit's own)",
     "diffusion", {},
     [](const Section&) -> LossFn {
       return [](const Tensor&, const data::Batch&) -> Tensor {
         fail("loss.type denoising_mse is computed by the latent_dit model itself");
       };
     }}};

#define TESSERA_GENERATION_METRIC(name, help)                                                                \
  const Registration<MetricFactory> name##_metric{                                                           \
      metrics(), {#name, help, "diffusion", {}, [] { return std::make_unique<GenerationMetric>(#name); }}};
TESSERA_GENERATION_METRIC(fd_vit, "Fréchet distance between generated and test images in the classifier's pooled features")
TESSERA_GENERATION_METRIC(fd_vit_floor, "the same distance between training and test images (the floor at this many images)")
TESSERA_GENERATION_METRIC(sample_accuracy, "the classifier's accuracy on class-conditional samples")
TESSERA_GENERATION_METRIC(precision, "fraction of samples within the k-NN manifold (k = 3) of the test images' features")
TESSERA_GENERATION_METRIC(recall, "fraction of test images within the k-NN manifold (k = 3) of the samples' features")
#undef TESSERA_GENERATION_METRIC

}  // namespace
}  // namespace tessera::train
