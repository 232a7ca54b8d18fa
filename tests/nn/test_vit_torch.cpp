// Linear, LayerNorm, multi-head self-attention (plain, causal, key padding), a transformer block
// and whole small ViTs agree with PyTorch (Debian's python3-torch, run by
// tests/nn/torch_transformer_reference.py, which loads Tessera's parameters by name with strict
// checking, so names and shapes must be timm's) on every output and every gradient, given the
// same parameters, inputs and output gradients. Tessera computes in f32; the reference runs in
// f64 on the same f32 values, so the error measured is Tessera's own. The bar for each tensor:
// max |ours - ref| / max |ref| below 1e-4. Without torch the test fails and says why.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "autograd/random.h"
#include "tests/support/torch_files.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/transformer.h"
#include "nn/vit.h"

using namespace tessera;
using test::read_f64;
using test::TempDir;
using test::write_f32;
namespace fs = std::filesystem;

namespace {

constexpr double kTolerance = 1e-4;

Tensor random_tensor(const Shape& shape, uint64_t seed, double low = -1, double high = 1) {
  Generator gen(seed);
  return uniform(shape, low, high, gen);
}

using Outputs = std::map<std::string, Tensor>;

// One model, its input, and what Tessera computed for it.
struct Case {
  std::string name;
  std::vector<std::string> spec;  // model arguments, "key value..." lines
  std::shared_ptr<nn::Module> module;
  std::function<Outputs(const Tensor& x)> forward;
  Shape x_shape;
  Tensor mask;  // optional key-padding mask (u8)
  double x_low = -1, x_high = 1;  // the input's range
  Tensor x;     // the input leaf, after the run
  Outputs outputs;
  fs::path dir;
};

Case make_case(std::string name, std::vector<std::string> spec, std::shared_ptr<nn::Module> module,
               std::function<Outputs(const Tensor&)> forward, Shape x_shape) {
  Case c;
  c.name = std::move(name);
  c.spec = std::move(spec);
  c.module = std::move(module);
  c.forward = std::move(forward);
  c.x_shape = std::move(x_shape);
  return c;
}

std::string tensor_line(const std::string& name, const Tensor& t) {
  std::string line = "tensor " + name;
  for (int64_t d : t.shape()) line += " " + std::to_string(d);
  return line;
}

// Gives every parameter random values of a useful size (away from timm's zeros and ones, so a
// swapped or ignored parameter shows), runs forward and backward, and writes the case's files.
void prepare(Case& c, uint64_t seed, const fs::path& root) {
  Generator gen(seed);
  for (auto& [name, p] : c.module->named_parameters()) {
    Tensor dst = p;
    dst.copy_(uniform(p.shape(), -0.5, 0.5, gen));
  }
  c.x = random_tensor(c.x_shape, seed + 1, c.x_low, c.x_high);
  c.x.requires_grad_();
  c.outputs = c.forward(c.x);
  c.dir = root / c.name;
  fs::create_directories(c.dir);
  std::ofstream spec(c.dir / "spec.txt");
  for (const std::string& line : c.spec) spec << line << "\n";
  Tensor loss;
  uint64_t k = 0;
  for (auto& [name, y] : c.outputs) {
    const Tensor g = random_tensor(y.shape(), seed + 100 + k++);
    const Tensor term = sum(mul(y, g));
    loss = loss.defined() ? loss + term : term;
    spec << tensor_line("grad." + name, g) << "\n";
    write_f32(c.dir / ("grad." + name + ".bin"), g);
  }
  loss.backward();
  spec << tensor_line("x", c.x) << "\n";
  write_f32(c.dir / "x.bin", c.x.detach());
  if (c.mask.defined()) {
    spec << tensor_line("mask", c.mask) << "\n";
    write_f32(c.dir / "mask.bin", c.mask.to(DType::f32));
  }
  for (auto& [name, p] : c.module->named_parameters()) {
    spec << tensor_line("param." + name, p) << "\n";
    write_f32(c.dir / ("param." + name + ".bin"), p);
  }
}

// max |ours - ref| / max |ref| against the reference file, checked against the bar.
double compare(const Case& c, const std::string& what, const std::string& file, const Tensor& ours) {
  BOOST_TEST_REQUIRE(ours.defined(), c.name << ": Tessera computed no " << what);
  const std::vector<double> mine = ours.contiguous().to_vector<double>();
  const std::vector<double> ref = read_f64(c.dir / file, mine.size());
  double max_diff = 0, max_ref = 0;
  for (size_t i = 0; i < mine.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(mine[i] - ref[i]));
    max_ref = std::max(max_ref, std::abs(ref[i]));
  }
  BOOST_TEST_REQUIRE(max_ref > 0, c.name << ": the reference " << what << " is all zeros");
  const double rel = max_diff / max_ref;
  BOOST_TEST(rel < kTolerance, c.name << " " << what << ": relative error " << rel << " (max |ref| " << max_ref << ")");
  return rel;
}

// Compares every output, the input gradient and every parameter gradient; returns the worst error.
double compare_all(const Case& c) {
  double worst = 0;
  for (auto& [name, y] : c.outputs) worst = std::max(worst, compare(c, name, "out." + name + ".bin", y));
  worst = std::max(worst, compare(c, "grad x", "grad_x.bin", c.x.grad()));
  for (auto& [name, p] : c.module->named_parameters())
    worst = std::max(worst, compare(c, "grad " + name, "grad_param." + name + ".bin", p.grad()));
  BOOST_TEST_MESSAGE(c.name << ": worst relative error over outputs and gradients " << worst);
  return worst;
}

void run_reference(const std::vector<Case>& cases, const fs::path& root) {
  const char* python = std::getenv("TESSERA_PYTHON");
  const std::string script = std::string(TESSERA_SOURCE_DIR) + "/tests/nn/torch_transformer_reference.py";
  std::string command = std::string(python ? python : "/usr/bin/python3") + " '" + script + "'";
  for (const Case& c : cases) command += " '" + c.dir.string() + "'";
  const fs::path log = root / "reference.log";
  command += " > '" + log.string() + "' 2>&1";
  const int status = std::system(command.c_str());
  if (status != 0) {
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    BOOST_FAIL("the PyTorch reference failed (status "
               << status
               << "); PyTorch is a declared test dependency (Debian's python3-torch for /usr/bin/python3, "
                  "installed by setup.sh; TESSERA_PYTHON picks another interpreter):\n"
               << text.str());
  }
}

Outputs single(const Tensor& y) { return {{"y", y}}; }

Case linear_case() {
  Generator gen(1);
  auto m = std::make_shared<nn::Linear>(7, 5, true, gen);
  return make_case("linear", {"model linear", "in 7", "out 5", "bias 1"}, m,
                   [m](const Tensor& x) { return single(m->forward(x)); }, {3, 4, 7});
}

Case layer_norm_case() {
  auto m = std::make_shared<nn::LayerNorm>(16, 1e-6);
  Case c = make_case("layer_norm", {"model layer_norm", "dim 16", "eps 1e-6"}, m,
                     [m](const Tensor& x) { return single(m->forward(x)); }, {4, 6, 16});
  c.x_low = -2, c.x_high = 4;  // an offset and spread, as residual streams have
  return c;
}

Case attention_case(const std::string& name, bool causal, bool padded) {
  Generator gen(2);
  auto m = std::make_shared<nn::MultiHeadSelfAttention>(12, 3, nn::MultiHeadSelfAttention::Options{.causal = causal},
                                                        gen);
  Case c = make_case(name,
                     {"model attention", "dim 12", "heads 3", "qkv_bias 1", std::string("causal ") + (causal ? "1" : "0")},
                     m, nullptr, {3, 7, 12});
  if (padded) {
    // keys 5, 6 of sample 0 and 2, 6 of sample 2 are padding; key 0 never is, so no query is fully masked
    std::vector<float> mask(3 * 7, 0.f);
    mask[5] = mask[6] = mask[2 * 7 + 2] = mask[2 * 7 + 6] = 1.f;
    c.mask = Tensor::from_vector(mask, {3, 7}).to(DType::u8);
  }
  const Tensor mask = c.mask;
  c.forward = [m, mask](const Tensor& x) { return single(m->forward(x, mask)); };
  return c;
}

Case block_case() {
  Generator gen(3);
  auto m = std::make_shared<nn::Block>(12, 3, nn::Block::Options{.mlp_ratio = 4}, gen);
  return make_case("block", {"model block", "dim 12", "heads 3", "mlp_ratio 4"}, m,
                   [m](const Tensor& x) { return single(m->forward(x)); }, {2, 5, 12});
}

Case vit_case(const std::string& name, nn::ViTConfig::Pooling pooling, nn::ViTConfig::PosEmbed pos, int64_t classes,
              nn::ViTConfig::Stem stem = nn::ViTConfig::Stem::patch) {
  nn::ViTConfig cfg;
  cfg.image_size = 12;
  cfg.patch_size = 4;
  cfg.channels = 2;
  cfg.width = 24;
  cfg.depth = 2;
  cfg.heads = 3;
  cfg.mlp_ratio = 2;
  cfg.pooling = pooling;
  cfg.pos_embed = pos;
  cfg.num_classes = classes;
  cfg.stem = stem;
  Generator gen(4);
  auto m = std::make_shared<nn::VisionTransformer>(cfg, gen);
  m->eval();
  const bool cls = pooling == nn::ViTConfig::Pooling::cls;
  const bool learned = pos == nn::ViTConfig::PosEmbed::learned;
  return make_case(name,
          {"model vit", "image 12", "patch 4", "channels 2", "width 24", "depth 2", "heads 3", "mlp_ratio 2",
           std::string("pooling ") + (cls ? "cls" : "avg"), std::string("pos_embed ") + (learned ? "learned" : "sincos"),
           "classes " + std::to_string(classes),
           std::string("stem ") + (stem == nn::ViTConfig::Stem::conv ? "conv" : "patch")},
          m,
          [m](const Tensor& x) {
            const nn::ViTOutput o = m->forward(x);
            Outputs out{{"tokens", o.tokens}, {"pooled", o.pooled}};
            if (o.logits.defined()) out["logits"] = o.logits;
            return out;
          },
          {3, 2, 12, 12});
}

}  // namespace

BOOST_AUTO_TEST_SUITE(vit_torch)

BOOST_AUTO_TEST_CASE(layers_and_vit_match_pytorch) {
  TempDir tmp("tessera_vit_torch");
  std::vector<Case> cases{linear_case(),
                          layer_norm_case(),
                          attention_case("attention", false, false),
                          attention_case("attention_causal", true, false),
                          attention_case("attention_padded", false, true),
                          attention_case("attention_causal_padded", true, true),
                          block_case(),
                          vit_case("vit_cls_learned", nn::ViTConfig::Pooling::cls, nn::ViTConfig::PosEmbed::learned, 5),
                          vit_case("vit_avg_sincos_headless", nn::ViTConfig::Pooling::avg,
                                   nn::ViTConfig::PosEmbed::sincos, 0),
                          vit_case("vit_avg_learned_conv_stem", nn::ViTConfig::Pooling::avg,
                                   nn::ViTConfig::PosEmbed::learned, 5, nn::ViTConfig::Stem::conv)};
  uint64_t seed = 10;
  for (Case& c : cases) prepare(c, seed += 10, tmp.path);
  run_reference(cases, tmp.path);
  for (const Case& c : cases) compare_all(c);
}

BOOST_AUTO_TEST_CASE(a_wrong_parameter_is_noticed) {
  // The comparison must be able to fail: the reference sees a Linear whose bias was changed.
  TempDir tmp("tessera_vit_torch");
  std::vector<Case> cases{linear_case()};
  prepare(cases[0], 7, tmp.path);
  auto& linear = dynamic_cast<nn::Linear&>(*cases[0].module);
  Tensor changed = linear.bias.detach().clone();
  static_cast<float*>(changed.raw_data())[2] += 0.01f;
  write_f32(cases[0].dir / "param.bias.bin", changed);
  run_reference(cases, tmp.path);
  const std::vector<double> ref = read_f64(cases[0].dir / "out.y.bin", size_t(cases[0].outputs["y"].numel()));
  const std::vector<double> mine = cases[0].outputs["y"].to_vector<double>();
  double max_diff = 0;
  for (size_t i = 0; i < ref.size(); ++i) max_diff = std::max(max_diff, std::abs(ref[i] - mine[i]));
  BOOST_TEST(max_diff > 0.009);
}

BOOST_AUTO_TEST_SUITE_END()
