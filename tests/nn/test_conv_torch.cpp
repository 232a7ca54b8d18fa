// Conv2d, ConvTranspose2d and GroupNorm agree with PyTorch (Debian's python3-torch, run by
// tests/nn/torch_conv_reference.py) on the output and on every gradient, given the same weights,
// inputs and output gradient. Tessera computes in f32; the reference runs in f64 on the same
// f32 values, so the error measured is Tessera's own. The bar: max |ours - ref| / max |ref|
// below 1e-4 for each tensor. Without torch the test fails and says why.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "autograd/random.h"
#include "tests/support/torch_files.h"
#include "nn/conv.h"
#include "nn/norm.h"

using namespace tessera;
using test::read_f64;
using test::TempDir;
using test::write_f32;
namespace fs = std::filesystem;

namespace {

constexpr double kTolerance = 1e-4;

// One layer, its input and output gradient, and what Tessera computed for them.
struct Case {
  std::string name;
  std::vector<std::string> spec;  // layer arguments, "key value..." lines
  std::shared_ptr<nn::UnaryModule> layer;
  Tensor weight, bias;  // the layer's (undefined when absent)
  Tensor x_leaf;        // what requires grad (x itself, or the storage x is a view of)
  std::function<Tensor(const Tensor&)> view;  // x_leaf -> x; the same map turns x_leaf.grad into gx
  Tensor y, gy;
  fs::path dir;
};

std::string shape_line(const std::string& name, const Tensor& t) {
  std::string line = "shape." + name;
  for (int64_t d : t.shape()) line += " " + std::to_string(d);
  return line;
}

std::string pair_line(const std::string& key, Size2 v) {
  return key + " " + std::to_string(v[0]) + " " + std::to_string(v[1]);
}

Tensor random_tensor(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  return uniform(shape, -1, 1, gen);
}

// Runs Tessera's forward and backward and writes the case's files.
void prepare(Case& c, const Shape& leaf_shape, uint64_t seed, const fs::path& root) {
  c.x_leaf = random_tensor(leaf_shape, seed);
  c.x_leaf.requires_grad_();
  if (!c.view) c.view = [](const Tensor& t) { return t; };
  const Tensor x = c.view(c.x_leaf);
  c.y = c.layer->forward(x);
  c.gy = random_tensor(c.y.shape(), seed + 1);
  c.y.backward(c.gy);

  c.dir = root / c.name;
  fs::create_directories(c.dir);
  std::ofstream spec(c.dir / "spec.txt");
  for (const std::string& line : c.spec) spec << line << "\n";
  spec << "bias " << (c.bias.defined() ? 1 : 0) << "\n";
  const Tensor x_data = x.detach();
  spec << shape_line("x", x_data) << "\n" << shape_line("gy", c.gy) << "\n";
  write_f32(c.dir / "x.bin", x_data);
  write_f32(c.dir / "gy.bin", c.gy);
  if (c.weight.defined()) {
    spec << shape_line("weight", c.weight) << "\n";
    write_f32(c.dir / "weight.bin", c.weight);
  }
  if (c.bias.defined()) {
    spec << shape_line("bias", c.bias) << "\n";
    write_f32(c.dir / "bias.bin", c.bias);
  }
}

// max |ours - ref| / max |ref|, and a check that it is below the bar.
double compare(const Case& c, const std::string& what, const Tensor& ours) {
  BOOST_TEST_REQUIRE(ours.defined(), c.name << ": Tessera computed no " << what);
  const std::vector<double> mine = ours.contiguous().to_vector<double>();
  const std::vector<double> ref = read_f64(c.dir / (what + ".bin"), mine.size());
  double max_diff = 0, max_ref = 0;
  for (size_t i = 0; i < mine.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(mine[i] - ref[i]));
    max_ref = std::max(max_ref, std::abs(ref[i]));
  }
  BOOST_TEST_REQUIRE(max_ref > 0, c.name << ": the reference " << what << " is all zeros");
  const double rel = max_diff / max_ref;
  BOOST_TEST(rel < kTolerance, c.name << " " << what << ": relative error " << rel << " (max |ref| " << max_ref << ")");
  BOOST_TEST_MESSAGE(c.name << " " << what << ": relative error " << rel);
  return rel;
}

Case conv_case(const std::string& name, int64_t in, int64_t out, Size2 kernel, Conv2dOptions o, bool bias,
               uint64_t seed) {
  Generator gen(seed);
  auto layer = std::make_shared<nn::Conv2d>(in, out, kernel, o, bias, gen);
  Case c;
  c.name = name;
  c.layer = layer;
  c.weight = layer->weight;
  c.bias = layer->bias;
  c.spec = {"op conv2d", "in " + std::to_string(in), "out " + std::to_string(out), pair_line("kernel", kernel),
            pair_line("stride", o.stride), pair_line("padding", o.padding), pair_line("dilation", o.dilation),
            "groups " + std::to_string(o.groups)};
  return c;
}

Case conv_transpose_case(const std::string& name, int64_t in, int64_t out, Size2 kernel, ConvTranspose2dOptions o,
                         bool bias, uint64_t seed) {
  Generator gen(seed);
  auto layer = std::make_shared<nn::ConvTranspose2d>(in, out, kernel, o, bias, gen);
  Case c;
  c.name = name;
  c.layer = layer;
  c.weight = layer->weight;
  c.bias = layer->bias;
  c.spec = {"op conv_transpose2d", "in " + std::to_string(in), "out " + std::to_string(out),
            pair_line("kernel", kernel), pair_line("stride", o.stride), pair_line("padding", o.padding),
            pair_line("output_padding", o.output_padding), pair_line("dilation", o.dilation),
            "groups " + std::to_string(o.groups)};
  return c;
}

Case group_norm_case(const std::string& name, int64_t groups, int64_t channels, double eps, bool affine,
                     uint64_t seed) {
  auto layer = std::make_shared<nn::GroupNorm>(groups, channels, eps, affine);
  if (affine) {  // away from ones and zeros, so that a swapped or ignored parameter shows
    Generator gen(seed);
    layer->weight.copy_(uniform({channels}, 0.5, 1.5, gen));
    layer->bias.copy_(random_tensor({channels}, seed + 1));
  }
  Case c;
  c.name = name;
  c.layer = layer;
  c.weight = layer->weight;
  c.bias = layer->bias;
  std::ostringstream e;
  e.precision(17);
  e << eps;
  c.spec = {"op group_norm", "groups " + std::to_string(groups), "channels " + std::to_string(channels),
            "eps " + e.str()};
  return c;
}

// Runs the reference over every case directory at once (one interpreter start-up).
void run_reference(const std::vector<Case>& cases, const fs::path& root) {
  const std::string script = std::string(TESSERA_SOURCE_DIR) + "/tests/nn/torch_conv_reference.py";
  std::string command = "/usr/bin/python3 '" + script + "'";
  for (const Case& c : cases) command += " '" + c.dir.string() + "'";
  const fs::path log = root / "reference.log";
  command += " > '" + log.string() + "' 2>&1";
  const int status = std::system(command.c_str());
  if (status != 0) {
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    BOOST_FAIL("the PyTorch reference failed (status " << status << "); PyTorch is a declared test dependency "
                                                             "(Debian's python3-torch for /usr/bin/python3, see setup.sh):\n"
                                                          << text.str());
  }
}

void check_all(std::vector<Case>& cases, const TempDir& tmp) {
  run_reference(cases, tmp.path);
  for (const Case& c : cases) {
    double worst = 0;
    worst = std::max(worst, compare(c, "y", c.y));
    worst = std::max(worst, compare(c, "gx", c.view(c.x_leaf.grad())));
    if (c.weight.defined()) worst = std::max(worst, compare(c, "gweight", c.weight.grad()));
    if (c.bias.defined()) worst = std::max(worst, compare(c, "gbias", c.bias.grad()));
    BOOST_TEST_MESSAGE(c.name << ": worst relative error " << worst);
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(conv_torch)

BOOST_AUTO_TEST_CASE(conv2d_matches_pytorch) {
  TempDir tmp;
  std::vector<Case> cases;
  Case c = conv_case("conv3x3_pad1", 3, 8, {3, 3}, {.padding = {1, 1}}, true, 1);
  prepare(c, {4, 3, 28, 28}, 11, tmp.path);
  cases.push_back(c);
  c = conv_case("conv4x4_stride2", 8, 16, {4, 4}, {.stride = {2, 2}, .padding = {1, 1}}, true, 2);
  prepare(c, {3, 8, 14, 14}, 12, tmp.path);
  cases.push_back(c);
  // groups, dilation, uneven stride and padding, no bias; x read through a permute
  c = conv_case("conv_groups_dilation_noncontiguous", 6, 9, {3, 3},
                {.stride = {2, 1}, .padding = {1, 2}, .dilation = {2, 1}, .groups = 3}, false, 3);
  c.view = [](const Tensor& t) { return t.permute({0, 3, 1, 2}); };
  prepare(c, {2, 11, 10, 6}, 13, tmp.path);
  cases.push_back(c);
  // stride 1 runs on wide column rows when they cost little or the output has few channels, on
  // exact rows otherwise: one case of each
  c = conv_case("conv3x3_exact_rows", 8, 32, {3, 3}, {.padding = {1, 1}}, true, 7);
  prepare(c, {3, 8, 7, 7}, 17, tmp.path);
  cases.push_back(c);
  c = conv_case("conv3x3_wide_rows_dilated", 8, 32, {3, 3}, {.padding = {2, 2}, .dilation = {2, 2}}, true, 8);
  prepare(c, {3, 8, 20, 20}, 18, tmp.path);
  cases.push_back(c);
  c = conv_case("conv1x1", 16, 4, {1, 1}, {}, true, 4);
  prepare(c, {2, 16, 7, 7}, 14, tmp.path);
  cases.push_back(c);
  // large enough per sample that the batch is split into several column chunks (2, 2, 1)
  c = conv_case("conv_chunked_batch", 8, 16, {3, 3}, {.padding = {1, 1}}, true, 5);
  prepare(c, {5, 8, 140, 140}, 15, tmp.path);
  cases.push_back(c);
  // many chunks of several samples each (7 chunks of 3 with a 2^17-element column budget)
  c = conv_case("conv_many_chunks", 32, 16, {4, 4}, {.stride = {2, 2}, .padding = {1, 1}}, true, 6);
  prepare(c, {21, 32, 14, 14}, 16, tmp.path);
  cases.push_back(c);
  check_all(cases, tmp);
}

BOOST_AUTO_TEST_CASE(conv_transpose2d_matches_pytorch) {
  TempDir tmp;
  std::vector<Case> cases;
  Case c = conv_transpose_case("convT4x4_stride2", 8, 4, {4, 4}, {.stride = {2, 2}, .padding = {1, 1}}, true, 21);
  prepare(c, {3, 8, 7, 7}, 31, tmp.path);
  cases.push_back(c);
  c = conv_transpose_case("convT_output_padding_groups", 6, 4, {3, 3},
                          {.stride = {2, 2}, .padding = {1, 1}, .output_padding = {1, 1}, .groups = 2}, true, 22);
  prepare(c, {2, 6, 5, 6}, 32, tmp.path);
  cases.push_back(c);
  c = conv_transpose_case("convT_dilation_noncontiguous", 4, 6, {3, 2},
                          {.stride = {1, 2}, .padding = {0, 1}, .output_padding = {1, 0}, .dilation = {2, 1}}, false,
                          23);
  c.view = [](const Tensor& t) { return t.transpose(2, 3); };
  prepare(c, {2, 4, 5, 6}, 33, tmp.path);
  cases.push_back(c);
  c = conv_transpose_case("convT3x3_stride1", 6, 4, {3, 3}, {.padding = {1, 1}}, true, 25);
  prepare(c, {2, 6, 9, 8}, 35, tmp.path);
  cases.push_back(c);
  c = conv_transpose_case("convT_many_chunks", 64, 32, {4, 4}, {.stride = {2, 2}, .padding = {1, 1}}, true, 24);
  prepare(c, {19, 64, 7, 7}, 34, tmp.path);
  cases.push_back(c);
  check_all(cases, tmp);
}

BOOST_AUTO_TEST_CASE(group_norm_matches_pytorch) {
  TempDir tmp;
  std::vector<Case> cases;
  Case c = group_norm_case("gn_8_of_32", 8, 32, 1e-5, true, 41);
  prepare(c, {4, 32, 7, 7}, 51, tmp.path);
  cases.push_back(c);
  c = group_norm_case("gn_plain_eps", 3, 6, 1e-3, false, 42);
  prepare(c, {2, 6, 5, 5}, 52, tmp.path);
  cases.push_back(c);
  c = group_norm_case("gn_instance", 32, 32, 1e-5, true, 43);
  prepare(c, {2, 32, 3, 3}, 53, tmp.path);
  cases.push_back(c);
  c = group_norm_case("gn_sequence_noncontiguous", 2, 4, 1e-5, true, 44);
  c.view = [](const Tensor& t) { return t.transpose(1, 2); };
  prepare(c, {3, 10, 4}, 54, tmp.path);
  cases.push_back(c);
  check_all(cases, tmp);
}

BOOST_AUTO_TEST_SUITE_END()
