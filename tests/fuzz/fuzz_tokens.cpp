// Token files (train/grid_tokens.h): `tessera decode` of the input with a VQ-VAE and a VAE made at
// start-up (untrained: the reader is under test, not the pictures). A refusal names the token file;
// a file that decodes gives a data set of one 8x8 gray image per row of its tokens.
#include "autograd/random.h"
#include "data/dataset.h"
#include "nn/capabilities.h"
#include "tests/fuzz/fuzz_input.h"
#include "train/checkpoint.h"
#include "train/experiment.h"
#include "train/grid_tokens.h"
#include "train/recipe.h"
#include "train/trained_model.h"

namespace {

using namespace tessera;

// A checkpoint of an 8x8 gray tokenizer built from `model` (a recipe's model section).
std::string make_checkpoint(const std::string& name, const std::string& model) {
  const train::Recipe recipe = train::Recipe::parse(
      "data: {train: none.h5, mean: [0.0], std: [1.0]}\nmodel:\n" + model + "loss: {type: mse}\n", name + ".yaml", {});
  train::DataShape shape;
  shape.channels = 1, shape.height = 8, shape.width = 8;
  Generator gen(0);
  const auto built = train::build_model(recipe, shape, gen);
  train::Checkpoint c;
  c.meta.recipe = recipe.text();
  c.meta.recipe_name = name;
  c.meta.input_shape = {1, 8, 8};
  for (const auto& [key, t] : built->state()) c.params[key] = t;
  const std::string path = fuzzing::scratch_path(name + ".h5");
  train::save_checkpoint(path, c);
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string out = fuzzing::scratch_path("decoded.h5");
  static const train::TrainedModel vq = train::TrainedModel::load(
      make_checkpoint("vq", "  type: vqvae\n  encoder: plain\n  code_dim: 8\n  codebook_size: 16\n"));
  static const train::TrainedModel vae =
      train::TrainedModel::load(make_checkpoint("vae", "  type: vae\n  encoder: plain\n  latent_channels: 3\n"));
  const std::string& input = fuzzing::input_file("tokens.h5", data, size);
  for (const train::TrainedModel* model : {&vq, &vae})
    fuzzing::refused_or_read(input, [&] {
      train::decode_grid_tokens(*model, model->need<nn::TokensToImage>("decode"), input, out, 0, true);
      const data::h5::Handle file(data::h5::open_for_reading(input));
      const data::h5::Handle tokens(H5Dopen2(file.get(), "tokens", H5P_DEFAULT));
      const auto decoded = data::Dataset::open(out);
      fuzzing::assert_holds(decoded->size() == int64_t(data::h5::dims_of(tokens.get()).at(0)) &&
                         decoded->image_bytes() == 64,
                     "the decoded data set does not hold one 8x8 gray image per row of tokens");
    });
  return 0;
}
