// Optimizers against torch.optim (run through Debian's python3 with python3-torch) in f64,
// parameter groups, and gradient clipping.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdio>
#include <sstream>

#include "autograd/error.h"
#include "autograd/ops.h"
#include "nn/linear.h"
#include "train/optim.h"

using namespace tessera;
using namespace tessera::train;

namespace {

// Both sides compute the same inputs from closed forms: p0[i] = sin(i + k), and the gradient at
// step t is cos(0.7 i + t + k) (1 + t) / 10; the lr changes each step as a schedule would.
double initial(int64_t i, int k) { return std::sin(double(i) + k); }
double gradient(int64_t i, int t, int k) { return std::cos(0.7 * double(i) + t + k) * (1 + t) / 10; }
double lr_at(int t) { return 0.1 / (t + 1); }

const char* torch_script = R"(
import sys, math, torch
kind, steps = sys.argv[1], int(sys.argv[2])
shapes = [(3, 4), (4,)]
params = []
for k, shape in enumerate(shapes):
    n = math.prod(shape)
    params.append(torch.tensor([math.sin(i + k) for i in range(n)], dtype=torch.float64).reshape(shape).requires_grad_())
groups = [{"params": [params[0]], "weight_decay": 0.1}, {"params": [params[1]], "weight_decay": 0.0}]
opt = {"sgd": lambda: torch.optim.SGD(groups, lr=0.1),
       "momentum": lambda: torch.optim.SGD(groups, lr=0.1, momentum=0.9, dampening=0.1),
       "nesterov": lambda: torch.optim.SGD(groups, lr=0.1, momentum=0.9, nesterov=True),
       "adam": lambda: torch.optim.Adam(groups, lr=0.1, betas=(0.8, 0.95), eps=1e-6),
       "adamw": lambda: torch.optim.AdamW(groups, lr=0.1, betas=(0.8, 0.95), eps=1e-6)}[kind]()
for t in range(steps):
    for g in opt.param_groups: g["lr"] = 0.1 / (t + 1)
    for k, p in enumerate(params):
        n = p.numel()
        p.grad = torch.tensor([math.cos(0.7 * i + t + k) * (1 + t) / 10 for i in range(n)], dtype=torch.float64).reshape(p.shape)
    opt.step()
print(" ".join(repr(v) for p in params for v in p.detach().reshape(-1).tolist()))
)";

std::vector<double> run_torch(const std::string& kind, int steps) {
  const std::string script_path = "/tmp/tessera_test_optim_" + std::to_string(::getpid()) + ".py";
  {
    FILE* f = std::fopen(script_path.c_str(), "w");
    std::fputs(torch_script, f);
    std::fclose(f);
  }
  const std::string command = "/usr/bin/python3 " + script_path + " " + kind + " " + std::to_string(steps);
  FILE* pipe = popen(command.c_str(), "r");
  std::string out;
  char buffer[4096];
  while (pipe && std::fgets(buffer, sizeof buffer, pipe)) out += buffer;
  const int status = pipe ? pclose(pipe) : -1;
  std::remove(script_path.c_str());
  BOOST_REQUIRE_MESSAGE(status == 0, "python3 with torch failed: " + command);
  std::istringstream in(out);
  std::vector<double> values;
  for (double v; in >> v;) values.push_back(v);
  return values;
}

std::vector<double> run_ours(const std::string& kind, int steps) {
  std::vector<Tensor> params;
  const std::vector<Shape> shapes = {{3, 4}, {4}};
  for (int k = 0; k < 2; ++k) {
    std::vector<double> v;
    for (int64_t i = 0; i < shape_numel(shapes[k]); ++i) v.push_back(initial(i, k));
    params.push_back(Tensor::from_vector(v, shapes[k]).requires_grad_());
  }
  std::vector<ParamGroup> groups = {{"decay", {{"w", params[0]}}, 0.1, 1}, {"no_decay", {{"b", params[1]}}, 0.0, 1}};
  std::unique_ptr<Optimizer> opt;
  if (kind == "sgd") opt = make_sgd(groups, {0, 0, false});
  if (kind == "momentum") opt = make_sgd(groups, {0.9, 0.1, false});
  if (kind == "nesterov") opt = make_sgd(groups, {0.9, 0, true});
  if (kind == "adam") opt = make_adam(groups, {0.8, 0.95, 1e-6, false});
  if (kind == "adamw") opt = make_adam(groups, {0.8, 0.95, 1e-6, true});
  for (int t = 0; t < steps; ++t) {
    opt->set_lr(lr_at(t));
    for (int k = 0; k < 2; ++k) {
      std::vector<double> g;
      for (int64_t i = 0; i < params[k].numel(); ++i) g.push_back(gradient(i, t, k));
      params[k].set_grad(Tensor::from_vector(g, params[k].shape()));
    }
    opt->step();
  }
  std::vector<double> out;
  for (const Tensor& p : params)
    for (double v : p.to_vector<double>()) out.push_back(v);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(optim)

BOOST_AUTO_TEST_CASE(matches_torch_optim_in_f64) {
  for (const std::string kind : {"sgd", "momentum", "nesterov", "adam", "adamw"}) {
    const std::vector<double> theirs = run_torch(kind, 6), ours = run_ours(kind, 6);
    BOOST_REQUIRE_EQUAL(theirs.size(), ours.size());
    double worst = 0;
    for (size_t i = 0; i < ours.size(); ++i) worst = std::max(worst, std::abs(theirs[i] - ours[i]));
    BOOST_TEST(worst < 1e-12, kind << ": max |ours - torch| = " << worst);
    // and the parameters did move (the comparison is not between two untouched copies)
    BOOST_TEST(std::abs(ours[0] - initial(0, 0)) > 1e-3, kind);
  }
}

BOOST_AUTO_TEST_CASE(state_round_trip_continues_identically) {
  auto make = [](Tensor& p) {
    p = Tensor::from_vector(std::vector<float>{1, -2, 3, 0.5f}, {4}).requires_grad_();
    return make_adam({{"all", {{"p", p}}, 0.01, 1}}, {0.9, 0.999, 1e-8, true});
  };
  Tensor a, b;
  auto first = make(a), second = make(b);
  auto grad = [](int t) { return Tensor::from_vector(std::vector<float>{0.1f * t, -0.2f, 0.3f, float(t)}, {4}); };
  first->set_lr(0.01), second->set_lr(0.01);
  for (int t = 0; t < 3; ++t) a.set_grad(grad(t)), first->step();
  // `second` takes first's state and parameters, then both take the same two steps.
  std::map<std::string, Tensor> state;
  for (auto& [name, t] : first->state()) state[name] = t.clone();
  second->load_state(state);
  b.copy_(a);
  BOOST_TEST(second->steps() == 3);
  for (int t = 3; t < 5; ++t) a.set_grad(grad(t)), first->step(), b.set_grad(grad(t)), second->step();
  BOOST_TEST(a.to_vector<float>() == b.to_vector<float>());
  state.erase("exp_avg/p");
  BOOST_CHECK_THROW(second->load_state(state), Error);
}

BOOST_AUTO_TEST_CASE(param_groups_skip_biases_and_named_tensors) {
  Generator gen(1);
  nn::Linear layer(3, 2, true, gen);
  const auto groups = param_groups(layer, 0.05, true, {});
  BOOST_REQUIRE_EQUAL(groups.size(), 2u);
  BOOST_TEST(groups[0].name == "decay");
  BOOST_TEST(groups[0].weight_decay == 0.05);
  BOOST_TEST(groups[0].params[0].first == "weight");
  BOOST_TEST(groups[1].weight_decay == 0.0);
  BOOST_TEST(groups[1].params[0].first == "bias");
  const auto by_name = param_groups(layer, 0.05, false, {"weight"});
  BOOST_TEST(by_name[0].params[0].first == "bias");  // the only decayed tensor now
  BOOST_TEST(by_name[1].params[0].first == "weight");
}

BOOST_AUTO_TEST_CASE(lr_scales_put_matching_parameters_in_scaled_groups) {
  Generator gen(1);
  nn::Linear layer(3, 2, true, gen);
  // "bias" matches only the bias; "i" matches both, but each tensor takes its first match.
  const auto groups = param_groups(layer, 0.05, true, {}, parse_lr_scales({"bias=3", "i=0.5"}));
  BOOST_REQUIRE_EQUAL(groups.size(), 2u);
  BOOST_TEST(groups[0].name == "decay*0.5");
  BOOST_TEST(groups[0].lr_scale == 0.5);
  BOOST_TEST(groups[0].weight_decay == 0.05);
  BOOST_TEST(groups[0].params[0].first == "weight");
  BOOST_TEST(groups[1].name == "no_decay*3");
  BOOST_TEST(groups[1].lr_scale == 3.0);
  BOOST_TEST(groups[1].weight_decay == 0.0);
  BOOST_TEST(groups[1].params[0].first == "bias");

  // The scale reaches the update: plain SGD moves the bias 3 times and the weight half as far.
  const std::vector<float> w0 = layer.weight.to_vector<float>(), b0 = layer.bias.to_vector<float>();
  auto sgd = make_sgd(param_groups(layer, 0, true, {}, parse_lr_scales({"bias=3", "i=0.5"})), {});
  sgd->set_lr(0.1);
  layer.weight.set_grad(Tensor::ones(layer.weight.shape()));
  layer.bias.set_grad(Tensor::ones(layer.bias.shape()));
  sgd->step();
  BOOST_TEST(std::abs(w0[0] - layer.weight.to_vector<float>()[0] - 0.05f) < 1e-6);
  BOOST_TEST(std::abs(b0[0] - layer.bias.to_vector<float>()[0] - 0.3f) < 1e-6);

  for (const char* bad : {"text", "=3", "text=", "text=0", "text=-1", "text=3x", "text=nan"})
    BOOST_CHECK_THROW(parse_lr_scales({bad}), Error);
  BOOST_TEST(parse_lr_scales({"a=b=2"})[0].pattern == "a=b");  // the last '=' splits
  // A pattern that takes nothing (a typo, or shadowed by an earlier one) is an error.
  BOOST_CHECK_THROW(param_groups(layer, 0, true, {}, parse_lr_scales({"wieght=2"})), Error);
  BOOST_CHECK_THROW(param_groups(layer, 0, true, {}, parse_lr_scales({"i=2", "bias=3"})), Error);
}

BOOST_AUTO_TEST_CASE(clipping_scales_to_the_max_norm) {
  Tensor a = Tensor::zeros({2}).requires_grad_(), b = Tensor::zeros({1}).requires_grad_();
  a.set_grad(Tensor::from_vector(std::vector<float>{3, 0}, {2}));
  b.set_grad(Tensor::from_vector(std::vector<float>{4}, {1}));
  BOOST_TEST(global_grad_norm({a, b}) == 5.0);
  BOOST_TEST(clip_grad_norm({a, b}, 10.0) == 5.0);  // below the limit: untouched
  BOOST_TEST(a.grad().to_vector<float>()[0] == 3.0f);
  BOOST_TEST(clip_grad_norm({a, b}, 1.0) == 5.0);
  BOOST_TEST(std::abs(global_grad_norm({a, b}) - 1.0) < 1e-5);
  BOOST_TEST(std::abs(b.grad().to_vector<float>()[0] - 0.8f) < 1e-5);
}

BOOST_AUTO_TEST_SUITE_END()
