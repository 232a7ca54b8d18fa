// The latent diffusion transformer's forward and backward agree with the PyTorch version of the
// same model (bench/dit_torch.py; nn/dit.h and nn/diffusion.h define it) given the same weights:
// Tessera writes its parameters (and the fixed sin-cos position table), a batch of latents,
// timesteps (0 and 999 among them), labels (the "no class" label among them) and a target, its
// output, the MSE loss against the target and the gradient of every parameter and of the input;
// `dit_torch.py check` recomputes them in float64 and compares (relative error <= 1e-4 per tensor,
// and the position table against the spec's). A dump with one output value changed must be refused,
// so the comparison is shown to be able to fail. The model's adaLN modulations, its output layer and
// every bias start at zero (adaLN-Zero: the untrained DiT outputs 0); they are drawn at random here
// so that every part of the model reaches the output.
// This executable does not link HDF5 (tests/nn links the nn layer only): the test writes raw tensors
// and a manifest, and `dit_torch.py pack` makes the HDF5 dump of them. PyTorch and h5py come from
// /usr/bin/python3 (Debian's python3-torch and python3-h5py, installed by setup.sh) or TESSERA_PYTHON.
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "autograd/random.h"
#include "nn/dit.h"
#include "nn/init.h"
#include "tests/support/torch_files.h"

using namespace tessera;
namespace fs = std::filesystem;

namespace {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs bench/dit_torch.py with these arguments; returns its exit status and output.
std::pair<int, std::string> run_reference(const std::string& arguments, const fs::path& log) {
  const char* python = std::getenv("TESSERA_PYTHON");
  const std::string command = shell_quote(python ? python : "/usr/bin/python3") + " " +
                              shell_quote(std::string(TESSERA_SOURCE_DIR) + "/bench/dit_torch.py") + " " + arguments +
                              " > " + shell_quote(log.string()) + " 2>&1";
  const int status = std::system(command.c_str());
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  return {status, text.str()};
}

// The raw tensors of a dump and the manifest `dit_torch.py pack` reads.
class RawDump {
 public:
  explicit RawDump(fs::path dir) : dir_(std::move(dir)) { fs::create_directories(dir_); }

  void attr(const std::string& name, const std::string& value) { manifest_ << "attr " << name << " " << value << "\n"; }

  void f32(const std::string& name, const Tensor& t) {
    const std::string file = next_file();
    test::write_f32(dir_ / file, t.detach());
    line(name, "f32", file, t.shape());
  }

  void i64(const std::string& name, const Tensor& t) {
    const std::string file = next_file();
    const std::vector<int64_t> v = t.contiguous().to_vector<int64_t>();
    std::ofstream out(dir_ / file, std::ios::binary);
    out.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * sizeof(int64_t)));
    BOOST_REQUIRE(out.good());
    line(name, "i64", file, t.shape());
  }

  void scalar_f64(const std::string& name, double value) {
    const std::string file = next_file();
    std::ofstream out(dir_ / file, std::ios::binary);
    out.write(reinterpret_cast<const char*>(&value), sizeof value);
    BOOST_REQUIRE(out.good());
    line(name, "f64", file, Shape{});
  }

  // Writes the manifest and packs everything into `dump`.
  void pack(const fs::path& dump) {
    std::ofstream(dir_ / "manifest.txt") << manifest_.str();
    const auto [status, output] = run_reference("pack " + shell_quote(dir_.string()) + " " + shell_quote(dump.string()),
                                                dump.string() + ".pack.log");
    BOOST_REQUIRE_MESSAGE(status == 0, "bench/dit_torch.py pack failed (PyTorch and h5py are declared test "
                                       "dependencies):\n" << output);
  }

 private:
  std::string next_file() { return std::to_string(count_++) + ".bin"; }
  void line(const std::string& name, const char* type, const std::string& file, const Shape& shape) {
    manifest_ << "tensor " << name << " " << type << " " << file;
    for (int64_t d : shape) manifest_ << " " << d;
    manifest_ << "\n";
  }
  fs::path dir_;
  std::ostringstream manifest_;
  int count_ = 0;
};

bool all_zero(const Tensor& t) {
  for (float v : t.contiguous().to_vector<float>())
    if (v != 0) return false;
  return true;
}

void forward_and_backward_agree(const nn::DiTConfig& c, const std::string& label) {
  Generator gen(19);
  nn::DiT model(c, gen);
  int randomised = 0;
  for (auto& [name, p] : model.named_parameters())
    if (all_zero(p)) {  // adaLN modulations, the output layer, every bias
      Tensor t = p;
      nn::init::normal_(t, 0, 0.2, gen);
      ++randomised;
    }
  BOOST_TEST_MESSAGE(label << ": " << randomised << " zero-initialised parameters drawn at random");
  BOOST_REQUIRE(randomised >= 4 * c.depth + 4);

  const int64_t n = 6;
  Generator data(7);
  Tensor x = randn({n, c.in_channels, c.input_size, c.input_size}, data);
  x.requires_grad_(true);
  const Tensor t = Tensor::from_vector(std::vector<float>{0, 999, 500, 17, 250, 731}, {n});
  const Tensor y = Tensor::from_vector(std::vector<int64_t>{0, 3, c.num_classes, 9, 3, 7}, {n});
  const Tensor target = randn({n, c.in_channels, c.input_size, c.input_size}, data);
  const Tensor output = model.forward(x, t, y);
  BOOST_REQUIRE(output.shape() == x.shape());
  const Tensor loss = mse_loss(output, target);
  loss.backward();

  test::TempDir dir("tessera_dit_torch");
  auto write_dump = [&](const std::string& name, double output_change) {
    RawDump raw(dir.path / (name + "_raw"));
    raw.attr("input_size", std::to_string(c.input_size));
    raw.attr("in_channels", std::to_string(c.in_channels));
    raw.attr("patch_size", std::to_string(c.patch_size));
    raw.attr("width", std::to_string(c.width));
    raw.attr("depth", std::to_string(c.depth));
    raw.attr("heads", std::to_string(c.heads));
    std::ostringstream ratio;
    ratio.precision(17);
    ratio << c.mlp_ratio;
    raw.attr("mlp_ratio", ratio.str());
    raw.attr("num_classes", std::to_string(c.num_classes));
    raw.attr("learned_pos_embed", c.learned_pos_embed ? "true" : "false");
    raw.attr("frequency_dim", std::to_string(c.frequency_dim));
    for (const auto& [pname, p] : model.named_parameters()) {
      raw.f32("params/" + pname, p);
      BOOST_REQUIRE_MESSAGE(p.grad().defined(), pname << " has no gradient");
      raw.f32("grads/" + pname, p.grad());
    }
    for (const auto& [bname, b] : model.named_buffers()) raw.f32("params/" + bname, b);  // the fixed pos_embed
    BOOST_REQUIRE(x.grad().defined());
    raw.f32("grads/x", x.grad());
    raw.f32("x", x);
    raw.f32("t", t);
    raw.i64("y", y);
    raw.f32("target", target);
    Tensor out = output.detach().contiguous().clone();
    if (output_change != 0) out.data<float>()[123] += float(output_change);
    raw.f32("output", out);
    raw.scalar_f64("loss", loss.item());
    const fs::path dump = dir.path / (name + ".h5");
    raw.pack(dump);
    return dump;
  };

  const fs::path dump = write_dump("dump", 0);
  const auto [status, output_text] = run_reference("check " + shell_quote(dump.string()) + " --tol 1e-4",
                                                   dir.path / "check.log");
  BOOST_TEST_MESSAGE(output_text);
  BOOST_CHECK_MESSAGE(status == 0, label << ": bench/dit_torch.py check disagrees (or could not run; PyTorch and "
                                             "h5py are declared test dependencies):\n" << output_text);
  const fs::path changed = write_dump("changed", 0.05);
  const auto [changed_status, changed_text] = run_reference("check " + shell_quote(changed.string()) + " --tol 1e-4",
                                                             dir.path / "changed.log");
  BOOST_CHECK_MESSAGE(changed_status != 0,
                      label << ": a dump with one output value changed by 0.05 passed the check:\n" << changed_text);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(dit_torch)

// The recipe's layout at a small width: 7x7x4 latents, one cell per token, fixed sin-cos positions.
BOOST_AUTO_TEST_CASE(patch1_sincos_positions_agree_with_pytorch) {
  nn::DiTConfig c;
  c.input_size = 7, c.in_channels = 4, c.patch_size = 1;
  c.width = 48, c.depth = 2, c.heads = 3, c.mlp_ratio = 4, c.num_classes = 10;
  c.learned_pos_embed = false, c.frequency_dim = 256;
  forward_and_backward_agree(c, "7x7x4, patch 1, sin-cos positions");
}

// Patches of 2x2 cells (patchify and unpatchify do more than reshape), learned positions,
// a narrower MLP and fewer timestep features.
BOOST_AUTO_TEST_CASE(patch2_learned_positions_agree_with_pytorch) {
  nn::DiTConfig c;
  c.input_size = 8, c.in_channels = 4, c.patch_size = 2;
  c.width = 48, c.depth = 2, c.heads = 3, c.mlp_ratio = 2, c.num_classes = 10;
  c.learned_pos_embed = true, c.frequency_dim = 64;
  forward_and_backward_agree(c, "8x8x4, patch 2, learned positions");
}

BOOST_AUTO_TEST_SUITE_END()
