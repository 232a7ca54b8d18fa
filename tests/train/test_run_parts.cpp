// The parts of a training run on their own: the parameter average (EMA) and the run folder
// (refusing a previous run, what --overwrite clears, the step checkpoints' order).
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <cstring>

#include "autograd/error.h"
#include "tests/support/cli_helpers.h"
#include "nn/linear.h"
#include "train/ema.h"
#include "train/run/run_folder.h"

using namespace tessera;
using namespace tessera::train;
using namespace tessera::testing;

namespace {

std::vector<float> values_of(const Tensor& t) { return t.to_vector<float>(); }

// Sets every parameter of `model` to `value`.
void fill_parameters(nn::Module& model, double value) {
  for (auto& [name, p] : model.named_parameters()) {
    Tensor t = p;
    t.copy_(Tensor::full(p.shape(), value));
  }
}

const char* minimal_recipe = R"(data:
  train: train.h5
model:
  type: mlp
train:
  steps: 2
)";

}  // namespace

BOOST_AUTO_TEST_SUITE(run_parts)

BOOST_AUTO_TEST_CASE(parameter_average_follows_the_weights_and_swaps_in_for_evaluation) {
  Generator gen(3);
  nn::Linear model(3, 2, true, gen);
  std::vector<std::vector<float>> initial;
  for (const auto& [name, p] : model.named_parameters()) initial.push_back(values_of(p));

  ParameterAverage average(model, 0.9);
  BOOST_REQUIRE(average.enabled());
  fill_parameters(model, 2.0);
  average.update(model);
  for (size_t i = 0; i < initial.size(); ++i) {
    const std::vector<float> got = values_of(average.weights()[i].second);
    for (size_t j = 0; j < got.size(); ++j) BOOST_TEST(std::abs(got[j] - (0.9f * initial[i][j] + 0.1f * 2.0f)) < 1e-6);
  }

  {
    const ParameterAverage::SwappedIn swapped(model, average);
    for (size_t i = 0; i < initial.size(); ++i)
      BOOST_TEST(values_of(model.named_parameters()[i].second) == values_of(average.weights()[i].second));
  }
  for (const auto& [name, p] : model.named_parameters())
    for (float v : values_of(p)) BOOST_TEST(v == 2.0f, name);  // the trained weights are back
}

BOOST_AUTO_TEST_CASE(parameter_average_restores_from_a_checkpoint_or_says_what_is_missing) {
  Generator gen(4);
  nn::Linear model(2, 2, true, gen);
  ParameterAverage average(model, 0.5);
  std::map<std::string, Tensor> saved;
  for (const auto& [name, t] : average.weights()) saved[name] = Tensor::full(t.shape(), 7.0);
  average.restore(saved);
  for (const auto& [name, t] : average.weights())
    for (float v : values_of(t)) BOOST_TEST(v == 7.0f, name);

  BOOST_CHECK_THROW(average.restore({}), Error);
  saved.erase("bias");
  BOOST_CHECK_THROW(average.restore(saved), Error);

  ParameterAverage none(model, 0);  // train.ema_decay 0 keeps nothing and ignores the checkpoint
  BOOST_TEST(!none.enabled());
  BOOST_TEST(none.weights().empty());
  none.restore({});
  none.update(model);
  BOOST_TEST(none.weights().empty());
}

BOOST_AUTO_TEST_CASE(run_folder_refuses_a_previous_run_unless_overwritten) {
  ScratchDir dir("run_folder");
  write_file(dir / "tiny.yaml", minimal_recipe);
  const std::string run = dir / "run";
  const RunFolder fresh = RunFolder::for_new_run(dir / "tiny.yaml", {}, run, false);
  BOOST_TEST(!std::filesystem::exists(run));  // opening creates nothing
  {
    const RunLock lock = fresh.prepare(0);
    BOOST_TEST(read_file(run + "/recipe.yaml") == fresh.recipe.text());
    // While one run holds the folder, a second is refused, even with --overwrite, and clears nothing.
    const RunFolder second = RunFolder::for_new_run(dir / "tiny.yaml", {}, run, true);
    try {
      const RunLock other = second.prepare(0);
      BOOST_FAIL("a second run on a locked folder was let in");
    } catch (const Error& e) {
      BOOST_TEST(std::string(e.what()).find("is in use by another run (tessera train, pid " + std::to_string(::getpid())) !=
                     std::string::npos, e.what());
    }
    BOOST_TEST(std::filesystem::exists(run + "/recipe.yaml"));
  }
  BOOST_TEST(!std::filesystem::exists(run + "/.lock"));  // released with the run

  for (const char* name : {"last.h5", "best.h5", "metrics.jsonl", "step_0000010.h5", "step_0000002.h5", "notes.txt"})
    write_file(run + "/" + name, "x");
  std::vector<std::filesystem::path> steps = fresh.step_checkpoints();
  BOOST_REQUIRE(steps.size() == 2u);
  BOOST_TEST(steps[0].filename() == "step_0000002.h5");  // oldest first
  BOOST_TEST(fresh.step_checkpoint(10) == steps[1]);

  BOOST_CHECK_THROW(RunFolder::for_new_run(dir / "tiny.yaml", {}, run, false), Error);
  const RunFolder again = RunFolder::for_new_run(dir / "tiny.yaml", {}, run, true);
  BOOST_TEST(again.step_checkpoints().size() == 2u);  // nothing is cleared before the run has started
  const RunLock lock = again.prepare(0);
  BOOST_TEST(again.step_checkpoints().empty());
  for (const char* name : {"last.h5", "best.h5", "metrics.jsonl"})
    BOOST_TEST(!std::filesystem::exists(run + "/" + name), name);
  BOOST_TEST(read_file(run + "/recipe.yaml") == again.recipe.text());
  BOOST_TEST(std::filesystem::exists(run + "/notes.txt"));  // not the run's, so kept
}

BOOST_AUTO_TEST_SUITE_END()
