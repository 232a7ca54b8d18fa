// Extending Tessera with a model is one file and one registration: this test defines an image
// tokenizer that exists nowhere else, registers it under its own model.type, and then trains,
// evaluates, tokenizes and decodes it with the ordinary `tessera` commands (run in-process), none
// of which knows its name. It is the example of docs/EXTENDING.md, part (b).
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "autograd/engine.h"
#include "autograd/ops.h"
#include "data/dataset.h"
#include "nn/capabilities.h"
#include "nn/conv.h"
#include "tests/support/h5_files.h"
#include "tests/support/cli_helpers.h"
#include "train/command.h"
#include "train/models/model_registry.h"

namespace tessera {
namespace {

// 2x2 patches -> `latent` soft channels by a strided convolution, and back by a transposed one
// and a sigmoid: the smallest trainable image tokenizer. What it can do, it declares by the
// capabilities it implements; nothing else tells the commands about it.
class PatchTokenizer : public nn::Module,
                       public nn::ImageToReconstruction,
                       public nn::ImageToTokens,
                       public nn::TokensToImage {
 public:
  PatchTokenizer(int64_t channels, int64_t latent, Generator& gen) : latent_(latent) {
    encoder = register_module("encoder", std::make_shared<nn::Conv2d>(channels, latent, Size2{2, 2},
                                                                      Conv2dOptions{{2, 2}}, true, gen));
    decoder = register_module("decoder", std::make_shared<nn::ConvTranspose2d>(latent, channels, Size2{2, 2},
                                                                               ConvTranspose2dOptions{{2, 2}}, true, gen));
  }

  nn::Reconstruction reconstruct(const Tensor& images) override {
    return {sigmoid(decoder->forward(encoder->forward(images))), Tensor::scalar(0), Tensor()};
  }
  nn::TokenGrid token_grid(int64_t height, int64_t width) const override {
    return {height / 2, width / 2, 2, latent_, 0, "patch"};
  }
  Tensor tokenize(const Tensor& images) override {
    NoGradGuard no_grad;
    return encoder->forward(images).permute({0, 2, 3, 1}).contiguous();
  }
  Tensor decode(const Tensor& tokens) override {
    NoGradGuard no_grad;
    return sigmoid(decoder->forward(tokens.permute({0, 3, 1, 2}).contiguous()));
  }

  std::shared_ptr<nn::Conv2d> encoder;
  std::shared_ptr<nn::ConvTranspose2d> decoder;

 private:
  int64_t latent_;
};

// The one registration: model.type test_patch_tokenizer with one recipe key of its own.
const train::Registration<train::ModelFactory> registration{
    train::models(),
    {"test_patch_tokenizer", "2x2 patches to soft tokens and back (defined in tests/tokenizers/test_extension.cpp)",
     "reconstruction",
     {train::integer("latent_channels", 3, "soft channels per 2x2 patch", 1)},
     [](const train::Section& s, const train::DataShape& data, Generator& gen) -> std::shared_ptr<nn::Module> {
       return std::make_shared<PatchTokenizer>(data.channels, s.integer("latent_channels"), gen);
     }}};

std::vector<uint8_t> all_pixels(const std::string& path) {
  const auto set = data::Dataset::open(path);
  std::vector<uint8_t> out(size_t(set->size() * set->image_bytes()));
  set->read_range(0, set->size(), out.data());
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(extension)

BOOST_AUTO_TEST_CASE(a_model_registered_in_a_test_trains_evaluates_tokenizes_and_decodes) {
  testing::ScratchDir dir("extension");
  testing::write_tiny_dataset(dir / "train.h5", 96, 1);
  testing::write_tiny_dataset(dir / "test.h5", 30, 2);
  testing::write_file(dir / "recipe.yaml",
                      "seed: 0\nthreads: 1\n"
                      "data: {train: " + dir / "train.h5" + ", eval: " + dir / "test.h5" +
                      ", mean: [0], std: [1], prefetch: 0}\n"
                      "model: {type: test_patch_tokenizer, latent_channels: 2}\n"
                      "loss: {type: mse}\noptim: {type: adam, lr: 0.05}\nschedule: {type: constant}\n"
                      "train: {steps: 40, batch_size: 16}\neval: {every: 0}\nlog: {every: 20}\n");
  const std::string run = dir / "run";
  BOOST_TEST_REQUIRE(cli::run_main({"train", dir / "recipe.yaml", "--run-dir", run}) == 0);

  // eval: the reconstruction task's metrics, and the model learned (the sigmoid of an untrained
  // decoder sits near 0.5, far from the tiny set's dark-to-bright pixels).
  BOOST_TEST_REQUIRE(cli::run_main({"eval", run + "/last.h5"}) == 0);
  const std::vector<double> losses = testing::train_log_values(run + "/metrics.jsonl", "loss");
  BOOST_TEST_REQUIRE(losses.size() == 2u);
  BOOST_TEST(losses.back() < 0.5 * losses.front(), "loss " << losses.front() << " -> " << losses.back());

  // tokenize: soft tokens [30, 3, 3, 2] (6x6 images, 2x2 patches) and the labels.
  BOOST_TEST_REQUIRE(cli::run_main({"tokenize", run + "/last.h5", dir / "test.h5", dir / "tokens.h5"}) == 0);
  std::vector<hsize_t> dims;
  const std::vector<float> tokens = testing::read_dataset<float>(dir / "tokens.h5", "tokens", dims);
  BOOST_TEST(dims == (std::vector<hsize_t>{30, 3, 3, 2}), boost::test_tools::per_element());
  testing::read_dataset<int64_t>(dir / "tokens.h5", "labels", dims);
  BOOST_TEST(dims == (std::vector<hsize_t>{30}), boost::test_tools::per_element());

  // decode: images like the originals — 6 dB better than grey (0.5, where the sigmoid of an
  // untrained decoder sits) is far beyond chance.
  BOOST_TEST_REQUIRE(cli::run_main({"decode", run + "/last.h5", dir / "tokens.h5", dir / "decoded.h5"}) == 0);
  const std::vector<uint8_t> a = all_pixels(dir / "test.h5"), b = all_pixels(dir / "decoded.h5");
  BOOST_TEST_REQUIRE(a.size() == b.size());
  double decoded = 0, grey = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    decoded += std::pow((double(a[i]) - double(b[i])) / 255.0, 2);
    grey += std::pow(double(a[i]) / 255.0 - 0.5, 2);
  }
  const double gain_db = 10 * std::log10(grey / decoded);
  BOOST_TEST(gain_db > 6, "decoded images are " << gain_db << " dB better than grey");

  // What it cannot do is refused by name: it makes no text embedding.
  BOOST_TEST(cli::run_main({"embed", run + "/last.h5", "--text", "a dark one"}) != 0);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace tessera
