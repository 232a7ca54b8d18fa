// Reconstruction: an image tokenizer (nn::ImageToReconstruction: VAE, VQ-VAE, FSQ) encodes images
// to tokens and decodes them back. The loss is the pixel loss plus the bottleneck's own (KL or VQ losses);
// the metrics are MSE, PSNR and SSIM over the eval set, codebook usage and perplexity of the
// hard tokens, and bits per image. After each evaluation of a run, samples/ in the run folder
// gets a PNG of eval images (top row) above their reconstructions (bottom row).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "autograd/ops/losses.h"
#include "autograd/ops.h"
#include "autograd/ops/quantize.h"
#include "data/image_io.h"
#include "data/png.h"
#include "nn/autoencoder.h"
#include "nn/capabilities.h"
#include "nn/image_metrics.h"
#include "train/task.h"

namespace tessera::train {
namespace {

nn::ImageToReconstruction& autoencoder(nn::Module& model) {
  auto* m = nn::capability<nn::ImageToReconstruction>(model);
  if (!m) fail("the reconstruction task needs a model that reconstructs images (nn::ImageToReconstruction)");
  return *m;
}

// What a reconstruction metric sees for one evaluated batch.
struct ReconstructionInput {
  const Tensor& images;          // [B, C, H, W] in [0, 1]
  const nn::Reconstruction& output;
  const nn::TokenGrid* grid;     // the model's tokens (nn::ImageToTokens), or null when it makes none
};

class ReconstructionMetric : public Metric {
 public:
  virtual void update(const ReconstructionInput& input) = 0;
  void update(const MetricInput&) override { fail("reconstruction metrics need the reconstruction task"); }
};

class Reconstruction : public Task {
 public:
  explicit Reconstruction(LossFn loss) : loss_(std::move(loss)) {}

  Tensor training_loss(nn::Module& model, const data::Batch& batch) override {
    require_unit_pixels(batch.images, "reconstruction needs");  // the metrics and sigmoid decoders assume them
    const nn::Reconstruction out = autoencoder(model).reconstruct(batch.images);
    return loss_(out.images, batch) + out.bottleneck_loss;
  }

  void evaluate(nn::Module& model, const data::Batch& batch, std::vector<std::unique_ptr<Metric>>& metrics) override {
    require_unit_pixels(batch.images, "reconstruction needs");  // the metrics and sigmoid decoders assume them
    const nn::Reconstruction out = autoencoder(model).reconstruct(batch.images);
    const double loss = (loss_(out.images, batch) + out.bottleneck_loss).item();
    nn::TokenGrid grid;
    const auto* tokenizer = nn::capability<nn::ImageToTokens>(model);
    if (tokenizer) grid = tokenizer->token_grid(batch.images.size(2), batch.images.size(3));
    for (auto& m : metrics) {
      if (auto* r = dynamic_cast<ReconstructionMetric*>(m.get()))
        r->update(ReconstructionInput{batch.images, out, tokenizer ? &grid : nullptr});
      else m->update(MetricInput{batch, out.images, loss});
    }
  }

  std::vector<std::string> default_metrics() const override { return {"loss", "mse", "psnr", "ssim"}; }

  // Dead codes restarted since the previous report: whether restarts have died down is what
  // tells a healthy codebook from one that keeps losing codes.
  std::vector<std::pair<std::string, double>> training_state(const nn::Module& model) const override {
    const auto* ae = dynamic_cast<const nn::Autoencoder*>(&model);
    if (ae == nullptr || ae->vector_quantizer() == nullptr) return {};
    const int64_t total = ae->vector_quantizer()->restarts();
    const int64_t since = total - reported_restarts_;
    reported_restarts_ = total;
    return {{"vq_restarts", double(since)}};
  }

  void write_samples(nn::Module& model, const data::Batch& batch, const std::string& run_dir, int64_t step) override {
    const int64_t n = std::min<int64_t>(batch.images.size(0), 8);
    if (n == 0) return;
    const Tensor originals = batch.images.slice(0, 0, n);
    const Tensor recon = autoencoder(model).reconstruct(originals).images;
    const int64_t c = originals.size(1), h = originals.size(2), w = originals.size(3);
    // [2n, H, W, C] u8: the originals, then their reconstructions
    std::vector<uint8_t> pixels = data::to_pixels(originals);
    const std::vector<uint8_t> reconstructed = data::to_pixels(recon);
    pixels.insert(pixels.end(), reconstructed.begin(), reconstructed.end());
    const std::filesystem::path dir = std::filesystem::path(run_dir) / "samples";
    std::filesystem::create_directories(dir);
    const std::string name = (dir / fmt::format("reconstructions_step_{:07}.png", step)).string();
    data::write_image_grid(name, pixels.data(), 2 * n, h, w, c, n);
    data::write_image_grid((dir / "reconstructions_last.png").string(), pixels.data(), 2 * n, h, w, c, n);
  }

 private:
  LossFn loss_;
  mutable int64_t reported_restarts_ = 0;  // VectorQuantizer::restarts() at the previous report
};

// MSE, PSNR, SSIM over the whole eval set (PSNR from the set-wide MSE).
class PixelMetric : public ReconstructionMetric {
 public:
  enum class Kind { mse, psnr, ssim };
  explicit PixelMetric(Kind kind) : kind_(kind) {}
  void update(const ReconstructionInput& in) override {
    if (kind_ == Kind::ssim) stats_.add(in.images, in.output.images);
    else add_mse_only(in);
  }
  double value() const override {
    switch (kind_) {
      case Kind::mse: return images_ ? squared_error_ / double(values_) : 0;
      case Kind::psnr: return nn::psnr_from_mse(images_ ? squared_error_ / double(values_) : 0);
      case Kind::ssim: return stats_.ssim();
    }
    return 0;
  }
  bool higher_is_better() const override { return kind_ != Kind::mse; }
  std::vector<double> partial_sums() const override {
    std::vector<double> s = stats_.sums();
    s.insert(s.end(), {squared_error_, double(values_), double(images_)});
    return s;
  }
  void set_partial_sums(const std::vector<double>& s) override {
    stats_.set_sums({s.begin(), s.begin() + 5});
    squared_error_ = s[5], values_ = int64_t(s[6]), images_ = int64_t(s[7]);
  }

 private:
  // MSE and PSNR skip the SSIM filtering, which costs far more than they do.
  void add_mse_only(const ReconstructionInput& in) {
    const Tensor a = in.images.contiguous(), b = in.output.images.contiguous();
    const float* pa = a.data<float>();
    const float* pb = b.data<float>();
    double se = 0;
    for (int64_t i = 0; i < a.numel(); ++i) se += (double(pa[i]) - pb[i]) * (double(pa[i]) - pb[i]);
    squared_error_ += se, values_ += a.numel(), images_ += a.size(0);
  }
  Kind kind_;
  nn::ReconstructionMetrics stats_;
  double squared_error_ = 0;
  int64_t values_ = 0, images_ = 0;
};

// Codebook statistics of the hard tokens over the eval set.
class CodebookMetric : public ReconstructionMetric {
 public:
  explicit CodebookMetric(bool perplexity) : perplexity_(perplexity) {}
  void update(const ReconstructionInput& in) override {
    if (!in.output.codes.defined() || in.grid == nullptr || !in.grid->hard())
      fail("eval.metrics: {} needs hard tokens (e.g. model.type vqvae or fsq), but this model makes {}",
           perplexity_ ? "perplexity" : "codebook_usage", in.grid ? in.grid->kind + " latents" : "no tokens");
    const auto counts = code_counts(in.output.codes, in.grid->codebook_size);
    if (counts_.empty()) counts_.assign(counts.size(), 0);
    for (size_t k = 0; k < counts.size(); ++k) counts_[k] += counts[k];
  }
  double value() const override { return perplexity_ ? nn::codebook_perplexity(counts_) : nn::codebook_usage(counts_); }
  bool higher_is_better() const override { return true; }

 private:
  bool perplexity_;
  std::vector<int64_t> counts_;
};

// Bits to store one image's tokens: h w log2(K) for hard tokens; h w c 32 (float32) for a VAE.
class BitsPerImage : public ReconstructionMetric {
 public:
  void update(const ReconstructionInput& in) override {
    if (in.grid == nullptr) fail("eval.metrics: bits_per_image needs a model that makes tokens (nn::ImageToTokens)");
    const int64_t tokens = in.grid->height * in.grid->width;
    bits_ = in.grid->hard() ? nn::bits_per_image(tokens, in.grid->codebook_size) : double(tokens * in.grid->channels * 32);
  }
  double value() const override { return bits_; }
  bool higher_is_better() const override { return false; }

 private:
  double bits_ = 0;
};

const Registration<TaskFactory> task{tasks(),
                                     {"reconstruction", "images -> tokens -> images", "",
                                      {},
                                      [](LossFn loss) { return std::make_unique<Reconstruction>(loss); }}};

const Registration<LossFactory> mse{
    losses(),
    {"mse", "mean squared error between reconstruction and image (plus the model's KL or VQ losses)", "reconstruction",
     {},
     [](const Section&) -> LossFn {
       return [](const Tensor& reconstruction, const data::Batch& batch) { return mse_loss(reconstruction, batch.images); };
     }}};

using Kind = PixelMetric::Kind;
const Registration<MetricFactory> mse_metric{
    metrics(), {"mse", "pixel MSE over the eval set", "reconstruction", {}, [] { return std::make_unique<PixelMetric>(Kind::mse); }}};
const Registration<MetricFactory> psnr{
    metrics(),
    {"psnr", "10 log10(1 / MSE) in dB, MSE over every pixel of the eval set", "reconstruction", {},
     [] { return std::make_unique<PixelMetric>(Kind::psnr); }}};
const Registration<MetricFactory> ssim{
    metrics(),
    {"ssim", "mean SSIM (11x11 Gaussian window, sigma 1.5)", "reconstruction", {},
     [] { return std::make_unique<PixelMetric>(Kind::ssim); }}};
const Registration<MetricFactory> usage{
    metrics(),
    {"codebook_usage", "share of codes used at least once on the eval set", "reconstruction", {},
     [] { return std::make_unique<CodebookMetric>(false); }}};
const Registration<MetricFactory> perplexity{
    metrics(),
    {"perplexity", "exp(entropy) of the code frequencies on the eval set", "reconstruction", {},
     [] { return std::make_unique<CodebookMetric>(true); }}};
const Registration<MetricFactory> bits{
    metrics(),
    {"bits_per_image", "bits of one image's tokens: h w log2(K), or h w c 32 for VAE latents", "reconstruction", {},
     [] { return std::make_unique<BitsPerImage>(); }}};

}  // namespace
}  // namespace tessera::train
