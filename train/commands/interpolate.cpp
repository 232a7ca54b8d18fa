// `tessera interpolate CKPT --from I --to J --out row.png`: a straight walk between two images'
// soft tokens, decoded — the smooth interpolation that continuous latents promise. Any checkpoint
// whose model turns images into soft tokens and back will do (a VAE; latent_dit through its VAE).
#include <fmt/format.h>

#include <filesystem>

#include "autograd/engine.h"
#include "autograd/ops.h"
#include "data/dataset.h"
#include "data/image_io.h"
#include "data/png.h"
#include "kernels/threads.h"
#include "train/command.h"
#include "train/experiment.h"
#include "train/trained_model.h"

namespace tessera::cli {
namespace {

int run_interpolate(const std::vector<std::string>& args) {
  std::string checkpoint, out, data_path;
  int64_t from = -1, to = -1, steps = 8;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) fail("{} needs a value", a);
      return args[++i];
    };
    if (a == "--from") from = train::parse_count(a, value(), 0);
    else if (a == "--to") to = train::parse_count(a, value(), 0);
    else if (a == "--steps") steps = train::parse_count(a, value(), 2);
    else if (a == "--data") data_path = value();
    else if (a == "--out") out = value();
    else if (a == "--threads") kernels::set_num_threads(train::parse_threads(a, value()));
    else if (a.rfind("--", 0) == 0) fail("unknown option '{}' (see tessera interpolate --help)", a);
    else if (checkpoint.empty()) checkpoint = a;
    else fail("unexpected argument '{}'", a);
  }
  if (checkpoint.empty() || from < 0 || to < 0 || out.empty())
    fail("give a checkpoint, --from I, --to J and --out, e.g. tessera interpolate runs/vae_fmnist/last.h5 --from 0 "
         "--to 1 --out walk.png");
  if (std::filesystem::path(out).extension() != ".png") fail("--out {}: the row is a PNG; give a path ending in .png", out);
  data::refuse_non_png_output(out, "--out");
  if (data_path.empty()) data_path = train::TrainedModel::stored_recipe(checkpoint).section("data").string("eval");
  if (data_path.empty()) fail("give the images with --data FILE (the checkpoint's recipe names no data.eval)");
  const std::shared_ptr<data::Dataset> set = data::Dataset::open(data_path);
  const train::TrainedModel model = train::TrainedModel::load(checkpoint, &set->info());
  nn::ImageToTokens& encoder = model.need<nn::ImageToTokens>("turn images into tokens");
  nn::TokensToImage& decoder = model.need<nn::TokensToImage>("turn tokens into images");
  if (encoder.token_grid(set->info().height, set->info().width).hard())
    fail("{} holds a '{}' model with hard tokens (codes): there is nothing between two codes to walk; interpolate "
         "needs soft tokens (a vae)", checkpoint, model.type());
  for (const int64_t index : {from, to})
    if (index >= set->size()) fail("--from/--to {}: {} holds {} images (0..{})", index, data_path, set->size(), set->size() - 1);

  NoGradGuard no_grad;
  const Tensor images = train::normalised_images(*set, {from, to}, model.image_loader());
  const Tensor z = encoder.tokenize(images);  // [2, h, w, c]
  const Tensor a = z.slice(0, 0, 1), b = z.slice(0, 1, 2);
  std::vector<Tensor> walk;
  for (int64_t k = 0; k < steps; ++k) {
    const double t = double(k) / double(steps - 1);
    walk.push_back(a * (1 - t) + b * t);
  }
  const Tensor decoded = decoder.decode(concat(walk, 0).contiguous());
  // The two originals at the ends, as the decoder's output range shows them ([0, 1]).
  const std::vector<uint8_t> originals = data::to_pixels(images.clone());
  std::vector<uint8_t> pixels = data::to_pixels(decoded);
  const int64_t per_image = decoded.size(1) * decoded.size(2) * decoded.size(3);
  std::vector<uint8_t> row(originals.begin(), originals.begin() + per_image);
  row.insert(row.end(), pixels.begin(), pixels.end());
  row.insert(row.end(), originals.begin() + per_image, originals.end());
  data::write_image_grid(out, row.data(), steps + 2, decoded.size(2), decoded.size(3), decoded.size(1), steps + 2);
  fmt::print("images {} and {} of {}, {} steps between their latents: {} (the originals at both ends)\n", from, to,
             data_path, steps, out);
  return 0;
}

const CommandRegistration registration{
    {"interpolate", "walk between two images' soft tokens (VAE latents) and decode the way, as a PNG row",
     "usage: tessera interpolate CKPT --from I --to J --out ROW.png [--steps N] [--data IMAGES.h5] [--threads N]\n\n"
     "Encodes images I and J of IMAGES.h5 (default: the recipe's data.eval) with CKPT's model (a vae, or\n"
     "a latent_dit through its VAE), decodes N points (default 8) evenly spaced on the straight line\n"
     "between their latents, and writes one row: image I, the N decoded points, image J. The first and\n"
     "last points are the two images' reconstructions. ROW.png replaces an earlier PNG, never another file.",
     run_interpolate}};

}  // namespace
}  // namespace tessera::cli
