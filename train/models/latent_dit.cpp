// model.type: latent_dit — a DiT denoising a frozen VAE's soft tokens (nn/latent_diffusion.h),
// trained by the diffusion task (train/tasks/diffusion.cpp). model.vae.from names the VAE run's
// checkpoint: its architecture always comes from there, its weights too when training starts (a
// diffusion checkpoint holds them as vae.*, so sampling later reads them from the checkpoint).
#include "train/models/latent_dit.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>

#include "data/dataset.h"
#include "data/image_io.h"
#include "train/models/model_registry.h"
#include "train/trained_model.h"

namespace tessera::train {
namespace {

constexpr int64_t kScaleImages = 4096;  // training images the latent scale is measured on

std::vector<Field> latent_dit_fields() {
  return {
      section("vae", "the frozen VAE whose latents are generated",
              {required_string("from", "the VAE run's checkpoint (a model with soft tokens, e.g. runs/vae_fmnist/last.h5)")}),
      integer("patch_size", 1, "latent cells per token side; must divide the latent grid", 1),
      integer("width", 256, "token width", 1), integer("depth", 6, "DiT blocks", 0),
      integer("heads", 4, "attention heads; must divide width", 1),
      number("mlp_ratio", 4, "MLP hidden width / token width", 0),
      string("pos_embed", "sincos", "position embedding of the latent tokens", {"sincos", "learned"}),
      string("schedule", "linear", "noise schedule: linear betas 1e-4..0.02 (DDPM) or cosine (Nichol & Dhariwal)",
             {"linear", "cosine"}),
      string("prediction", "eps", "what the DiT predicts: the noise, or v = sqrt(ab) noise - sqrt(1-ab) x0", {"eps", "v"}),
      integer("timesteps", 1000, "diffusion steps of training", 2, 100000),
      number("class_dropout", 0.1, "training labels replaced by 'no class' at this rate (for classifier-free guidance)", 0, 0.99),
      section("sampling", "how samples are drawn in evaluation (tessera sample can override)",
              {string("sampler", "ddim", "ddim: deterministic (eta 0); ddpm: ancestral", {"ddim", "ddpm"}),
               integer("steps", 50, "denoising steps, evenly spaced over the training steps", 1),
               number("guidance", 3, "classifier-free guidance scale (1 = none)", 0, 100),
               integer("seed", 0, "the evaluation samples' seed")}),
      section("evaluation", "generated images against real ones, in a classifier's features",
              {string("classifier", "", "a ViT classifier checkpoint (e.g. runs/vit_fmnist/last.h5); empty: the loss only"),
               integer("samples", 1000, "images generated per evaluation (an equal share per class) and real test "
                                        "images they are compared with", 20)}),
  };
}

// 1 / the standard deviation of the VAE's latents of the first training images.
double measure_latent_scale(nn::LatentDiffusion& model, const DataShape& data) {
  if (data.train_path.empty()) fail("model.type latent_dit: data.train is needed to measure the latent scale");
  const auto set = data::Dataset::open(data.train_path);
  const int64_t n = std::min(kScaleImages, set->info().size);
  const int64_t C = data.channels, H = data.height, W = data.width;
  std::vector<uint8_t> pixels(static_cast<size_t>(n * H * W * C));
  set->read_range(0, n, pixels.data());
  double sum = 0, sum2 = 0;
  int64_t count = 0;
  constexpr int64_t kBatch = 512;
  for (int64_t start = 0; start < n; start += kBatch) {
    const int64_t b = std::min(kBatch, n - start);
    // As the VAE was trained: pixels in [0, 1] (the reconstruction task allows nothing else).
    const Tensor images = data::from_pixels(pixels.data() + start * H * W * C, b, H, W, C);
    const Tensor z = model.tokenize(images).contiguous();
    const float* p = z.data<float>();
    for (int64_t k = 0; k < z.numel(); ++k) sum += p[k], sum2 += double(p[k]) * p[k];
    count += z.numel();
  }
  const double mean = sum / double(count), var = sum2 / double(count) - mean * mean;
  if (!(var > 0 && std::isfinite(var)))
    fail("model.type latent_dit: the VAE's latents of {} have no spread (variance {})", data.train_path, var);
  fmt::print("latent scale: 1 / {:.4f} (std of the VAE latents of the first {} images of {}; mean {:.4f})\n",
             std::sqrt(var), n, data.train_path, mean);
  return 1 / std::sqrt(var);
}

std::shared_ptr<nn::Module> build(const Section& s, const DataShape& data, Generator& gen) {
  if (data.num_classes < 1)
    fail("model.type latent_dit is class-conditional: data.train needs labels with class_names");
  const std::string vae_path = s.section("vae").string("from");
  if (!std::filesystem::exists(vae_path))
    fail("model.vae.from: {} does not exist (the VAE's checkpoint: its architecture is needed even when its weights "
         "come from a latent_dit checkpoint); train it first, e.g. tessera train recipes/vae_fmnist.yaml", vae_path);
  TrainedModel vae = [&] {
    try {
      return TrainedModel::load(vae_path);
    } catch (const Error& e) {
      fail("model.vae.from: {}", e.what());
    }
  }();
  const auto* tokens = vae.find<nn::ImageToTokens>();
  if (!tokens || !vae.find<nn::TokensToImage>())
    fail("model.vae.from: {} holds a '{}' model, which does not turn images into tokens and back", vae_path, vae.type());
  const nn::TokenGrid grid = tokens->token_grid(data.height, data.width);
  if (grid.hard())
    fail("model.vae.from: {} holds a '{}' model with hard tokens; latent_dit denoises soft tokens (a vae)", vae_path, vae.type());
  if (vae.shape().channels != data.channels || vae.shape().height != data.height || vae.shape().width != data.width)
    fail("model.vae.from: {} was trained on {}x{}x{} images (C x H x W), data.train holds {}x{}x{}", vae_path,
         vae.shape().channels, vae.shape().height, vae.shape().width, data.channels, data.height, data.width);
  if (grid.height != grid.width)
    fail("model.vae.from: {} makes a {}x{} latent grid; latent_dit needs a square one", vae_path, grid.height, grid.width);

  nn::LatentDiffusionOptions o;
  o.dit.input_size = grid.height;
  o.dit.in_channels = grid.channels;
  o.dit.patch_size = s.integer("patch_size");
  o.dit.width = s.integer("width");
  o.dit.depth = s.integer("depth");
  o.dit.heads = s.integer("heads");
  o.dit.mlp_ratio = s.number("mlp_ratio");
  o.dit.num_classes = data.num_classes;
  o.dit.learned_pos_embed = s.string("pos_embed") == "learned";
  if (grid.height % o.dit.patch_size != 0)
    fail("model.patch_size {} does not divide the VAE's {}x{} latent grid", o.dit.patch_size, grid.height, grid.width);
  o.schedule = nn::parse_noise_schedule(s.string("schedule"));
  o.target = nn::parse_diffusion_target(s.string("prediction"));
  o.timesteps = s.integer("timesteps");
  o.class_dropout = s.number("class_dropout");
  const Section sampling = s.section("sampling");
  o.sampling.ddpm = sampling.string("sampler") == "ddpm";
  o.sampling.steps = sampling.integer("steps");
  o.sampling.guidance = sampling.number("guidance");
  if (o.sampling.steps > o.timesteps)
    fail("model.sampling.steps {} exceeds model.timesteps {}", o.sampling.steps, o.timesteps);
  const Section ev = s.section("evaluation");
  DiffusionEvaluationSettings settings{ev.string("classifier"), ev.integer("samples"), data.train_path,
                                       uint64_t(sampling.integer("seed"))};
  // A classifier that is not there would only be found at the first evaluation, after training.
  if (!data.weights_follow && !settings.classifier.empty() && !std::filesystem::exists(settings.classifier))
    fail("model.evaluation.classifier: {} does not exist; train it first (tessera train recipes/vit_fmnist.yaml) or "
         "set it to \"\" to evaluate the denoising loss only", settings.classifier);
  if (!data.weights_follow && settings.classifier.empty())
    fmt::print(stderr, "warning: model.evaluation.classifier is empty: fd_vit, sample_accuracy, precision and recall "
                       "will be null\n");
  auto model = std::make_shared<LatentDitModel>(vae.shared_module(), o, settings, gen);
  if (!data.weights_follow) model->set_latent_scale(measure_latent_scale(*model, data));
  return model;
}

const Registration<ModelFactory> latent_dit{
    models(),
    {"latent_dit", "DiT denoising a frozen VAE's latents, class-conditional with classifier-free guidance", "diffusion",
     latent_dit_fields(), build}};

}  // namespace
}  // namespace tessera::train
