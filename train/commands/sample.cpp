// `tessera sample CKPT --out grid.png`: new images from a generative model's checkpoint (any model
// that samples images for class labels, nn::LabelsToImage: latent_dit), as a PNG grid with a row
// per class and, with --h5, as an image data set.
#include <fmt/format.h>

#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <filesystem>

#include "data/dataset.h"
#include "data/hdf5_util.h"
#include "data/image_io.h"
#include "data/png.h"
#include "kernels/threads.h"
#include "train/command.h"
#include "train/experiment.h"
#include "train/trained_model.h"

namespace tessera::cli {
namespace {

// The model with its class names, taken from the training set its recipe names when that is at hand.
train::TrainedModel load_with_class_names(const std::string& checkpoint) {
  const std::string train_path = train::TrainedModel::stored_recipe(checkpoint).section("data").string("train");
  if (!train_path.empty() && std::filesystem::exists(train_path)) {
    const auto set = data::Dataset::open(train_path);
    if (set->info().has_labels) return train::TrainedModel::load(checkpoint, &set->info());
  }
  return train::TrainedModel::load(checkpoint);
}

// --class NAME, an index, or "all" -> the classes to sample.
std::vector<int64_t> chosen_classes(const std::string& choice, int64_t count, const std::vector<std::string>& names) {
  std::vector<int64_t> classes;
  if (choice == "all") {
    for (int64_t c = 0; c < count; ++c) classes.push_back(c);
    return classes;
  }
  const auto lower = [](std::string s) {
    for (char& ch : s) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    return s;
  };
  for (size_t c = 0; c < names.size(); ++c)
    if (lower(names[c]) == lower(choice)) return {int64_t(c)};  // "sneaker" names "Sneaker"
  char* end = nullptr;
  const long index = std::strtol(choice.c_str(), &end, 10);
  if (!choice.empty() && *end == '\0' && index >= 0 && index < count) return {int64_t(index)};
  fail("--class {}: not a class of this model (give all, an index 0..{}{}{})", choice, count - 1,
       names.empty() ? "" : ", or one of ", fmt::join(names, ", "));
}

int run_sample(const std::vector<std::string>& args) {
  std::string checkpoint, out, h5, choice = "all";
  int64_t per_class = 8;
  uint64_t seed = 0;
  bool overwrite = false;
  std::optional<double> guidance;
  std::optional<int64_t> steps;
  std::optional<std::string> sampler;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) fail("{} needs a value", a);
      return args[++i];
    };
    if (a == "--out") out = value();
    else if (a == "--h5") h5 = value();
    else if (a == "--class") choice = value();
    else if (a == "--n") per_class = train::parse_count(a, value(), 1);
    else if (a == "--steps") steps = train::parse_count(a, value(), 1);
    else if (a == "--seed") seed = uint64_t(train::parse_count(a, value(), 0));
    else if (a == "--guidance") {
      const std::string& v = value();
      char* end = nullptr;
      const double g = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !std::isfinite(g) || g < 0) fail("--guidance: expected a number >= 0, got '{}'", v);
      guidance = g;
    } else if (a == "--sampler") {
      sampler = value();
      if (*sampler != "ddim" && *sampler != "ddpm") fail("--sampler: expected ddim or ddpm, got '{}'", *sampler);
    } else if (a == "--threads") kernels::set_num_threads(train::parse_threads(a, value()));
    else if (a == "--precision") train::set_precision(a, value());
    else if (a == "--overwrite") overwrite = true;
    else if (a.rfind("--", 0) == 0) fail("unknown option '{}' (see tessera sample --help)", a);
    else if (checkpoint.empty()) checkpoint = a;
    else fail("unexpected argument '{}'", a);
  }
  if (checkpoint.empty() || out.empty())
    fail("give a checkpoint and --out, e.g. tessera sample runs/dit_fmnist/last.h5 --out samples.png");
  if (std::filesystem::path(out).extension() != ".png") fail("--out {}: the grid is a PNG; give a path ending in .png", out);
  data::refuse_non_png_output(out, "--out");
  if (!h5.empty()) data::h5::refuse_to_replace(h5, "tessera sample", overwrite);

  const train::TrainedModel model = load_with_class_names(checkpoint);
  nn::LabelsToImage& generator = model.need<nn::LabelsToImage>("sample images for class labels");
  const std::vector<std::string>& names = model.shape().class_names;
  const std::vector<int64_t> classes = chosen_classes(choice, generator.num_classes(), names);
  nn::SamplingOptions options = generator.default_sampling();
  if (guidance) options.guidance = *guidance;
  if (steps) options.steps = *steps;
  if (sampler) options.ddpm = *sampler == "ddpm";

  std::vector<int64_t> labels;
  for (const int64_t c : classes)
    for (int64_t k = 0; k < per_class; ++k) labels.push_back(c);
  Generator gen(seed);
  const auto start = std::chrono::steady_clock::now();
  const Tensor images = generator.generate_images(labels, options, gen);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::vector<uint8_t> pixels = data::to_pixels(images);
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  // A row per class when every class is drawn; rows of 8 for one class.
  data::write_image_grid(out, pixels.data(), n, h, w, c, classes.size() > 1 ? per_class : std::min<int64_t>(per_class, 8));
  if (!h5.empty()) {
    std::vector<std::string> class_names = names;
    if (class_names.empty())
      for (int64_t k = 0; k < generator.num_classes(); ++k) class_names.push_back(std::to_string(k));
    data::DatasetWriter writer(h5, h, w, c, class_names);
    writer.set_written_by("tessera sample");
    writer.append(pixels.data(), n, labels.data());
    writer.close();
  }
  std::vector<std::string> shown;
  for (const int64_t k : classes) shown.push_back(names.empty() ? std::to_string(k) : names[size_t(k)]);
  fmt::print("{} images ({} per class: {}) in {:.1f} s: {} {} steps, guidance {}, seed {}\n", n, per_class,
             fmt::join(shown, ", "), seconds, options.ddpm ? "DDPM" : "DDIM", options.steps, options.guidance, seed);
  fmt::print("grid: {}{}\n", out, h5.empty() ? "" : "; data set: " + h5);
  return 0;
}

const CommandRegistration registration{
    {"sample", "new images from a generative model's checkpoint (latent_dit), as a PNG grid and a data set",
     "usage: tessera sample CKPT --out GRID.png [--class NAME|INDEX|all] [--n N] [--guidance G] [--steps S]\n"
     "                      [--sampler ddim|ddpm] [--seed S] [--h5 SAMPLES.h5] [--overwrite] [--threads N]\n"
     "                      [--precision fp32|bf16]\n\n"
     "Rebuilds the model of CKPT (its EMA weights when the run kept them) and draws N images per class\n"
     "(default 8) of every class, or of one (by name as the training set calls it, or by index), from\n"
     "noise: S denoising steps (default: the recipe's model.sampling.steps) of DDIM (deterministic)\n"
     "or DDPM (ancestral), with classifier-free guidance G (1 = none; default the recipe's), decoded\n"
     "through the model's VAE. The same seed gives the same images.\n\n"
     "  --out GRID.png  a row per class (replaces an earlier PNG, never another file)\n"
     "  --h5 FILE       also write the images as a data set (images, labels, class_names); an existing\n"
     "                  FILE is replaced only if an earlier sample wrote it, or with --overwrite\n"
     "  --threads N     worker threads\n"
     "  --precision P   matrix products in fp32 or bf16",
     run_sample}};

}  // namespace
}  // namespace tessera::cli
