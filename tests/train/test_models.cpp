// Models built from recipes through the registry: the MLP's names, shapes and errors, and the
// task/loss/metric wiring a recipe gets.
#include <boost/test/unit_test.hpp>

#include "autograd/error.h"
#include "autograd/ops.h"
#include "autograd/random.h"
#include "nn/mlp.h"
#include "train/experiment.h"

using namespace tessera;
using namespace tessera::train;

namespace {
Recipe recipe_with(const std::vector<std::string>& overrides) {
  return Recipe::parse("data:\n  train: x.h5\nmodel:\n  type: mlp\n  hidden: [5, 4]\ntrain:\n  steps: 1\n", "r.yaml", overrides);
}
}  // namespace

BOOST_AUTO_TEST_SUITE(models)

BOOST_AUTO_TEST_CASE(mlp_from_a_recipe_has_pytorch_style_names) {
  Generator gen(0);
  const auto model = build_model(recipe_with({}), DataShape{1, 3, 2, 7, {}, {}, false, ""}, gen);
  const nn::NamedTensors params = model->named_parameters();
  std::vector<std::string> names;
  for (const auto& [name, t] : params) names.push_back(name);
  BOOST_TEST(names == std::vector<std::string>({"layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
                                                "layers.2.weight", "layers.2.bias"}));
  BOOST_TEST(params[0].second.shape() == Shape({5, 6}));  // 1x3x2 images flattened to 6
  BOOST_TEST(params[4].second.shape() == Shape({7, 4}));  // 7 classes
  auto& mlp = dynamic_cast<nn::UnaryModule&>(*model);
  BOOST_TEST(mlp(Tensor::zeros({4, 1, 3, 2})).shape() == Shape({4, 7}));
  BOOST_CHECK_THROW(mlp(Tensor::zeros({4, 1, 3, 3})), Error);
}

BOOST_AUTO_TEST_CASE(mlp_forward_is_linear_relu_linear) {
  Generator gen(1);
  nn::FlattenMLP mlp(3, {4}, 2, nn::Activation::relu, gen);
  const Tensor x = randn({5, 3}, gen);
  const Tensor expected = matmul(relu(matmul(x, mlp.layers[0]->weight.t()) + mlp.layers[0]->bias),
                                 mlp.layers[1]->weight.t()) + mlp.layers[1]->bias;
  BOOST_TEST(allclose(mlp(x), expected, 1e-6, 1e-6));
}

BOOST_AUTO_TEST_CASE(task_loss_and_metrics_are_wired_by_name) {
  const Recipe r = recipe_with({"loss.label_smoothing=0.1"});
  const auto task = build_task(r);
  BOOST_TEST(metric_names(r, *task) == std::vector<std::string>({"accuracy", "loss"}));
  BOOST_TEST(metric_names(recipe_with({"eval.metrics=[top5, loss]"}), *task) == std::vector<std::string>({"top5", "loss"}));
  try {
    metric_names(recipe_with({"eval.metrics=[acuracy]"}), *task);
    BOOST_FAIL("no error");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find("unknown metric 'acuracy' (did you mean accuracy?)") != std::string::npos, e.what());
  }
  BOOST_CHECK_THROW(train::models().get("mlpp"), Error);
}

BOOST_AUTO_TEST_CASE(optimizer_from_a_recipe_uses_groups) {
  Generator gen(0);
  const Recipe r = recipe_with({"optim.weight_decay=0.05"});
  const auto model = build_model(r, DataShape{1, 2, 2, 3, {}, {}, false, ""}, gen);
  const auto opt = build_optimizer(r, *model);
  BOOST_TEST(std::string(opt->name()) == "adamw");
  BOOST_REQUIRE_EQUAL(opt->groups().size(), 2u);
  BOOST_TEST(opt->groups()[0].params.size() == 3u);  // the weights
  BOOST_TEST(opt->groups()[1].weight_decay == 0.0);   // the biases
}

BOOST_AUTO_TEST_SUITE_END()
