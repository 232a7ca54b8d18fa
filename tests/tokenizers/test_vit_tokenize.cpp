// `tessera tokenize` on a ViT checkpoint, run as a user would: a tiny ViT trained for two steps
// on a tiny data set, its tokens written by the command and compared with the model's own
// features, and the refusals (not a ViT, wrong image size, output = input) with exit codes.
#include <boost/test/unit_test.hpp>

#include <hdf5.h>

#include <cmath>

#include "tests/support/cli_helpers.h"
#include "tests/support/h5_files.h"
#include "autograd/engine.h"
#include "autograd/ops.h"
#include "data/hdf5_util.h"
#include "nn/vit.h"
#include "train/checkpoint.h"
#include "train/experiment.h"

using namespace tessera;
using tessera::testing::run_tessera;
using tessera::testing::ScratchDir;
using tessera::testing::read_dataset;

namespace {

std::string vit_recipe(const std::string& train_path) {
  return "seed: 3\n"
         "data:\n  train: " + train_path + "\n  eval: " + train_path + "\n  mean: [0.4]\n  std: [0.3]\n"
         "model:\n  type: vit\n  patch_size: 2\n  width: 8\n  depth: 2\n  heads: 2\n  mlp_ratio: 2\n"
         "optim:\n  lr: 1.0e-3\n"
         "train:\n  steps: 2\n  batch_size: 4\n"
         "eval:\n  batch_size: 5\n";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(vit_tokenize)

BOOST_AUTO_TEST_CASE(tokens_and_pooled_embedding_of_every_image) {
  ScratchDir dir("vit_tokenize");
  const std::string set = dir / "tiny.h5";
  testing::write_tiny_dataset(set, 12, 5);
  testing::write_file(dir / "vit.yaml", vit_recipe(set));
  const auto trained = run_tessera("train vit.yaml --run-dir run --threads 1", dir.path.string());
  BOOST_TEST_REQUIRE(trained.exit_code == 0, trained.output);
  // 12 images in batches of 5: the last batch is short
  const auto r = run_tessera("tokenize run/last.h5 tiny.h5 tokens.h5 --threads 1", dir.path.string());
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST(r.output.find("tokens [12, 9, 8]") != std::string::npos, r.output);

  std::vector<hsize_t> tdims, pdims, ldims;
  const auto tokens = read_dataset<float>(dir / "tokens.h5", "tokens", tdims);
  const auto pooled = read_dataset<float>(dir / "tokens.h5", "pooled", pdims);
  const auto labels = read_dataset<int64_t>(dir / "tokens.h5", "labels", ldims);
  BOOST_TEST(tdims == (std::vector<hsize_t>{12, 9, 8}));
  BOOST_TEST(pdims == (std::vector<hsize_t>{12, 8}));
  BOOST_TEST(ldims == (std::vector<hsize_t>{12}));
  for (int64_t i = 0; i < 12; ++i) BOOST_TEST(labels[size_t(i)] == i % 3);

  // The same numbers from the checkpoint's model, on images normalised by hand.
  const train::Checkpoint c = train::load_checkpoint(dir / "run/last.h5");
  const train::Recipe recipe = train::Recipe::parse(c.meta.recipe, "stored recipe");
  Generator gen(0);
  train::DataShape shape;
  shape.channels = 1, shape.height = 6, shape.width = 6, shape.num_classes = 3;
  auto model = train::build_model(recipe, shape, gen);
  model->load_state(c.params);
  model->eval();
  auto dataset = data::Dataset::open(set);
  std::vector<uint8_t> pixels(size_t(12 * 36));
  dataset->read_range(0, 12, pixels.data());
  std::vector<float> normalised(pixels.size());
  for (size_t i = 0; i < pixels.size(); ++i) normalised[i] = (float(pixels[i]) / 255.f - 0.4f) / 0.3f;
  NoGradGuard no_grad;
  const nn::ViTOutput expected =
      dynamic_cast<nn::ViTClassifier&>(*model).vit().forward(Tensor::from_vector(normalised, {12, 1, 6, 6}));
  const auto et = expected.tokens.contiguous().to_vector<float>(), ep = expected.pooled.contiguous().to_vector<float>();
  double worst = 0;
  for (size_t i = 0; i < et.size(); ++i) worst = std::max(worst, double(std::abs(et[i] - tokens[i])));
  for (size_t i = 0; i < ep.size(); ++i) worst = std::max(worst, double(std::abs(ep[i] - pooled[i])));
  BOOST_TEST(worst < 1e-5);
}

BOOST_AUTO_TEST_CASE(refusals_name_the_problem) {
  ScratchDir dir("vit_tokenize_refusals");
  const std::string set = dir / "tiny.h5";
  testing::write_tiny_dataset(set, 8, 6);
  testing::write_file(dir / "vit.yaml", vit_recipe(set));
  BOOST_TEST_REQUIRE(run_tessera("train vit.yaml --run-dir run --threads 1", dir.path.string()).exit_code == 0);

  // images of another size
  data::DatasetWriter writer(dir / "big.h5", 8, 8, 1);
  std::vector<uint8_t> pixels(64 * 2, 7);
  writer.append(pixels.data(), 2);
  writer.close();
  auto r = run_tessera("tokenize run/last.h5 big.h5 out.h5", dir.path.string());
  BOOST_TEST(r.exit_code != 0);
  BOOST_TEST(r.output.find("8x8") != std::string::npos, r.output);
  BOOST_TEST(!std::filesystem::exists(dir / "out.h5"));

  // the output would replace the input
  const auto size_before = std::filesystem::file_size(set);
  r = run_tessera("tokenize run/last.h5 tiny.h5 tiny.h5", dir.path.string());
  BOOST_TEST(r.exit_code != 0);
  BOOST_TEST(r.output.find("is the input") != std::string::npos, r.output);
  BOOST_TEST(std::filesystem::file_size(set) == size_before);

  // a checkpoint of another model
  testing::write_file(dir / "mlp.yaml", "data:\n  train: " + set + "\nmodel:\n  type: mlp\ntrain:\n  steps: 1\n  batch_size: 4\n");
  BOOST_TEST_REQUIRE(run_tessera("train mlp.yaml --run-dir mlp --threads 1", dir.path.string()).exit_code == 0);
  r = run_tessera("tokenize mlp/last.h5 tiny.h5 out.h5", dir.path.string());
  BOOST_TEST(r.exit_code != 0);
  BOOST_TEST(r.output.find("'mlp'") != std::string::npos, r.output);

  // missing arguments
  BOOST_TEST(run_tessera("tokenize run/last.h5 tiny.h5", dir.path.string()).exit_code != 0);
}

BOOST_AUTO_TEST_SUITE_END()
