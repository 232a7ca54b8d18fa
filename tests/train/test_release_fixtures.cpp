// Checkpoints written by release 0.1 still work. tests/fixtures/release_0_1 holds one small run of
// every model type (mlp, vit with EMA, vae, vqvae with EMA, fsq with the residual coder, clip,
// siglip), stopped at step 6 of 12 by that release's own binary (make_fixtures.sh), with the
// metrics that release printed for the checkpoint and for the run finished from it. Today's build
// must load each, evaluate it to the same figures and resume it to the same end, and the commands
// that read checkpoints must use the weights eval uses.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>

#include "autograd/engine.h"
#include "autograd/ops/losses.h"
#include "nn/capabilities.h"
#include "tests/support/h5_files.h"
#include "tests/support/cli_helpers.h"
#include "train/checkpoint.h"
#include "train/trained_model.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;
using testing::flat_json_numbers;
using testing::read_file;
using testing::run_tessera;
using testing::ScratchDir;

const std::vector<std::string> model_types{"mlp", "vit", "vae", "vqvae", "fsq", "clip", "siglip"};

fs::path fixtures() { return fs::path(TESSERA_SOURCE_DIR) / "tests/fixtures/release_0_1"; }

// A scratch folder holding the fixtures' data/ (the stored recipes name data/train.h5 and data/test.h5).
struct FixtureDir : ScratchDir {
  explicit FixtureDir(const std::string& name) : ScratchDir(name) {
    fs::copy(fixtures() / "data", path / "data", fs::copy_options::recursive);
  }
};

// Every metric of `want` is in `got`, equal within `relative` (rates of items such as accuracy
// and recall within `items`: one test image more or less may flip on another CPU's kernels).
void check_metrics(const std::map<std::string, double>& got, const std::map<std::string, double>& want,
                   double relative, double items, const std::string& what) {
  BOOST_TEST_REQUIRE(!want.empty(), what << ": no expected metrics");
  for (const auto& [name, value] : want) {
    BOOST_TEST_REQUIRE(got.count(name) == 1, what << ": no metric " << name);
    const bool rate = name.find("accuracy") != std::string::npos || name.find("_r") != std::string::npos;
    const double allowed = rate ? items : relative * std::max(1.0, std::fabs(value));
    BOOST_TEST(std::fabs(got.at(name) - value) <= allowed,
               what << ": " << name << " is " << got.at(name) << ", release 0.1 gave " << value);
  }
}

// Release 0.1 reported a classifier's label-smoothed loss as "loss"; today "loss" is the plain
// cross-entropy and the smoothed one "smoothed_loss" (issue 22). So for a checkpoint trained with
// smoothing, the release's "loss" is compared with the smoothed loss recomputed over the same set.
std::map<std::string, double> as_release_named(std::map<std::string, double> got, const std::string& checkpoint,
                                               const fs::path& dir) {
  const train::TrainedModel model = train::TrainedModel::load(checkpoint);
  const train::Section loss = model.recipe().section("loss");
  if (loss.string("type") != "cross_entropy" || loss.number("label_smoothing") == 0) return got;
  const std::string data = (dir / model.recipe().section("data").string("eval")).string();
  double sum = 0, rows = 0;
  NoGradGuard no_grad;
  model.for_each_batch(data::Dataset::open(data), data, 0, -1, [&](const data::Batch& b) {
    const Tensor logits = model.need<nn::ImageToLogits>("classify").logits(b.images);
    sum += cross_entropy(logits, b.labels, loss.number("label_smoothing")).item() * double(b.indices.size());
    rows += double(b.indices.size());
  });
  got["loss"] = sum / rows;
  return got;
}

std::map<std::string, double> expected(const std::string& type, int step) {
  return flat_json_numbers(read_file((fixtures() / "expected" / (type + ".step" + std::to_string(step) + ".json")).string()));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(release_fixtures)

BOOST_AUTO_TEST_CASE(every_model_type_evaluates_as_release_0_1_did) {
  FixtureDir dir("fixtures_eval");
  for (const std::string& type : model_types) {
    const fs::path checkpoint = fixtures() / "runs" / type / "last.h5";
    const testing::RunResult r = run_tessera("eval '" + checkpoint.string() + "' --json --threads 1", dir.path.string());
    BOOST_TEST_REQUIRE(r.exit_code == 0, type << ": " << r.output);
    check_metrics(as_release_named(flat_json_numbers(r.output), checkpoint.string(), dir.path), expected(type, 6), 1e-5, 0,
                  type + " at step 6");
  }
}

BOOST_AUTO_TEST_CASE(every_model_type_resumes_as_release_0_1_did) {
  FixtureDir dir("fixtures_resume");
  for (const std::string& type : model_types) {
    fs::copy(fixtures() / "runs" / type, dir.path / type, fs::copy_options::recursive);
    const testing::RunResult train = run_tessera("train --resume " + type + " --threads 1", dir.path.string());
    BOOST_TEST_REQUIRE(train.exit_code == 0, type << ": " << train.output);
    BOOST_TEST(train.output.find("resumed at step 6 of 12") != std::string::npos, train.output);
    const testing::RunResult eval = run_tessera("eval " + type + "/last.h5 --json --threads 1", dir.path.string());
    BOOST_TEST_REQUIRE(eval.exit_code == 0, type << ": " << eval.output);
    check_metrics(as_release_named(flat_json_numbers(eval.output), dir / (type + "/last.h5"), dir.path), expected(type, 12),
                  1e-3, 1.5 / 48, type + " resumed to step 12");
  }
}

// The vqvae fixture kept EMA weights and evaluates with them: tokenize and decode must use them too.
BOOST_AUTO_TEST_CASE(tokenize_and_decode_use_the_weights_eval_uses) {
  FixtureDir dir("fixtures_ema");
  const std::string checkpoint = (fixtures() / "runs/vqvae/last.h5").string();
  const train::TrainedModel model = train::TrainedModel::load(checkpoint);
  BOOST_TEST_REQUIRE(model.uses_ema());
  const train::Checkpoint stored = train::load_checkpoint(checkpoint);
  BOOST_TEST_REQUIRE(!stored.ema.empty());
  for (const auto& [name, t] : model.module().state())
    if (stored.ema.count(name)) {
      const std::vector<float> a = t.contiguous().to_vector<float>(), b = stored.ema.at(name).to_vector<float>();
      BOOST_TEST(a == b, name << " is not the EMA weight");
    }

  // The codes `tessera tokenize` writes are those of the EMA weights, and differ from the raw weights'.
  auto& tokenizer = model.need<nn::ImageToTokens>("tokenize");
  const auto test_set = data::Dataset::open(dir / "data/test.h5");
  std::vector<int64_t> with_ema;
  model.for_each_batch(test_set, dir / "data/test.h5", 0, -1, [&](const data::Batch& b) {
    const std::vector<int64_t> codes = tokenizer.tokenize(b.images).to_vector<int64_t>();
    with_ema.insert(with_ema.end(), codes.begin(), codes.end());
  });
  model.module().load_state(stored.params);
  std::vector<int64_t> raw;
  model.for_each_batch(test_set, dir / "data/test.h5", 0, -1, [&](const data::Batch& b) {
    const std::vector<int64_t> codes = tokenizer.tokenize(b.images).to_vector<int64_t>();
    raw.insert(raw.end(), codes.begin(), codes.end());
  });
  BOOST_TEST_REQUIRE(raw != with_ema, "the fixture's EMA and raw weights give the same codes: the test cannot tell them apart");

  const testing::RunResult r = run_tessera("tokenize '" + checkpoint + "' data/test.h5 tokens.h5", dir.path.string());
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  std::vector<hsize_t> dims;
  BOOST_TEST(testing::read_dataset<int64_t>(dir / "tokens.h5", "tokens", dims) == with_ema);

  // decode(tokenize(x)) is the reconstruction eval scores: its MSE to the images is eval's mse
  // up to the rounding of pixels to 8 bits.
  const testing::RunResult d = run_tessera("decode '" + checkpoint + "' tokens.h5 decoded.h5", dir.path.string());
  BOOST_TEST_REQUIRE(d.exit_code == 0, d.output);
  const auto original = data::Dataset::open(dir / "data/test.h5"), decoded = data::Dataset::open(dir / "decoded.h5");
  std::vector<uint8_t> a(size_t(original->size() * original->image_bytes())), b(a.size());
  original->read_range(0, original->size(), a.data());
  decoded->read_range(0, decoded->size(), b.data());
  double squared = 0;
  for (size_t i = 0; i < a.size(); ++i) squared += std::pow((double(a[i]) - double(b[i])) / 255.0, 2);
  const double eval_mse = expected("vqvae", 6).at("mse");
  BOOST_TEST(squared / double(a.size()) == eval_mse, boost::test_tools::tolerance(0.03));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace tessera
