// The vision-language model's forward and backward agree with the PyTorch version of the same
// model (bench/vlm_torch.py) given the same weights: Tessera writes its parameters, a batch of
// four task sequences (caption, count, detect with location tokens, answer), its logits, loss and
// every parameter's gradient (image tower trained) to an HDF5 dump, and `vlm_torch.py check`
// recomputes them in PyTorch and compares (relative error <= 1e-4 per tensor). A dump with one
// logit changed must be refused, so the comparison is shown to be able to fail. PyTorch and h5py
// come from /usr/bin/python3 (Debian's python3-torch and python3-h5py, installed by setup.sh) or
// TESSERA_PYTHON.
#include <boost/test/unit_test.hpp>

#include <hdf5.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "autograd/ops.h"
#include "autograd/random.h"
#include "data/hdf5_util.h"
#include "nn/init.h"
#include "nn/vlm.h"

using namespace tessera;
namespace fs = std::filesystem;
using data::h5::Handle;

namespace {

void write(hid_t file, const std::string& name, const Tensor& t) {
  const Tensor c = t.detach().contiguous();
  const hid_t type = c.dtype() == DType::f32 ? H5T_NATIVE_FLOAT : c.dtype() == DType::f64 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64;
  BOOST_REQUIRE(c.dtype() == DType::f32 || c.dtype() == DType::f64 || c.dtype() == DType::i64);
  std::vector<hsize_t> dims(c.shape().begin(), c.shape().end());
  Handle space(c.dim() == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(int(dims.size()), dims.data(), nullptr));
  Handle links(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(links.get(), 1);
  Handle ds(H5Dcreate2(file, name.c_str(), type, space.get(), links.get(), H5P_DEFAULT, H5P_DEFAULT));
  BOOST_REQUIRE(ds.valid());
  BOOST_REQUIRE(H5Dwrite(ds.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, c.raw_data()) >= 0);
}

// Runs the checker; returns its exit status and output.
std::pair<int, std::string> check(const fs::path& dump) {
  const char* python = std::getenv("TESSERA_PYTHON");
  const fs::path log = dump.string() + ".log";
  const std::string command = std::string(python ? python : "/usr/bin/python3") + " '" + TESSERA_SOURCE_DIR +
                              "/bench/vlm_torch.py' check '" + dump.string() + "' --tol 1e-4 > '" + log.string() + "' 2>&1";
  const int status = std::system(command.c_str());
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  return {status, text.str()};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(vlm_torch)

namespace {

void agrees_with_pytorch(nn::ViTConfig::Stem stem, nn::VlmConfig::Fusion fusion = nn::VlmConfig::Fusion::prefix,
                         int64_t cross_attention_every = 1, int64_t content_grid = 1, int64_t frames = 1) {
  nn::VlmConfig c;
  c.frames = frames;
  c.content_grid = content_grid;
  c.image.stem = stem;
  c.fusion = fusion;
  c.cross_attention_every = cross_attention_every;
  c.image.image_size = 64, c.image.patch_size = 8, c.image.channels = 1;
  c.image.width = 48, c.image.depth = 2, c.image.heads = 2, c.image.num_classes = 0;
  c.image.pooling = nn::ViTConfig::Pooling::avg;
  c.width = 48, c.depth = 2, c.heads = 3, c.text_context = 96, c.location_bins = 64;
  Generator gen(11);
  nn::VisionLanguageModel model(c, gen);
  if (model.projector) {
    nn::init::normal_(model.projector->weight, 0, 0.05, gen);  // zero at birth (prefix); here the image must matter
    nn::init::normal_(model.projector->bias, 0, 0.02, gen);
  }
  if (model.dual_token) {  // zero at birth, like the prefix projector
    nn::init::normal_(model.dual_token->context_projector->weight, 0, 0.05, gen);
    nn::init::normal_(model.dual_token->content_projector->weight, 0, 0.05, gen);
    nn::init::normal_(model.dual_token->content_projector->bias, 0, 0.02, gen);
  }
  if (model.cross_blocks)
    for (const auto& b : model.cross_blocks->items) {  // closed at birth; open, so every path has a gradient
      nn::init::uniform_(b->gate_attn, 0.3, 0.8, gen);
      nn::init::uniform_(b->gate_mlp, -0.8, -0.3, gen);
    }

  const std::vector<std::pair<std::string, std::string>> pairs{
      {"caption", "a bag right of a large shirt."},
      {"count bag", "2"},
      {"detect bag ; shirt", "<loc0010><loc0004><loc0030><loc0021> bag ; <loc0040><loc0033><loc0060><loc0062> shirt"},
      {"answer what is left of the sandal?", "nothing"}};
  const auto b = int64_t(pairs.size());
  std::vector<std::vector<int64_t>> rows;
  std::vector<int64_t> prefix;
  int64_t t = 0;
  for (const auto& [p, s] : pairs) {
    rows.push_back(model.vocabulary().sequence(p, s, true));
    prefix.push_back(model.image_tokens_count() + int64_t(model.vocabulary().sequence(p, "", false).size()));
    t = std::max(t, int64_t(rows.back().size()));
  }
  std::vector<int64_t> ids(size_t(b * t), nn::VlmVocabulary::kPad), targets(size_t(b * t), -100);
  for (int64_t r = 0; r < b; ++r) {
    const auto& seq = rows[size_t(r)];
    std::copy(seq.begin(), seq.end(), ids.begin() + r * t);
    // Position k predicts k + 1, scored when k + 1 is past the prompt (suffix and EOS).
    for (int64_t k = 0; k + 1 < int64_t(seq.size()); ++k)
      if (model.image_tokens_count() + k + 1 >= prefix[size_t(r)]) targets[size_t(r * t + k)] = seq[size_t(k + 1)];
  }
  const Tensor id_t = Tensor::from_vector(ids, {b, t}), prefix_t = Tensor::from_vector(prefix, {b}),
               target_t = Tensor::from_vector(targets, {b, t});
  Generator pixels(5);
  const Tensor images = frames == 1 ? uniform({b, 1, 64, 64}, -0.5, 3, pixels) : uniform({b, frames, 1, 64, 64}, -0.5, 3, pixels);
  const Tensor logits = model.logits(images, id_t, prefix_t);
  const Tensor loss = model.loss(images, id_t, prefix_t, target_t);  // -100 is "not scored" too
  loss.backward();

  const fs::path dir = fs::temp_directory_path() /
                       fs::path("tessera_vlm_torch_" + std::to_string(::getpid()) +
                                (stem == nn::ViTConfig::Stem::conv ? "_conv_" : "_patch_") +
                                std::to_string(int(fusion)) + "_" + std::to_string(cross_attention_every) + "_" +
                                std::to_string(content_grid) + "_" + std::to_string(frames));
  fs::create_directories(dir);
  auto write_dump = [&](const fs::path& path, double logit_change) {
    Handle file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    BOOST_REQUIRE(file.valid());
    data::h5::write_attribute(file.get(), "config",
                              std::string(R"({"num_patches": 64, "loc_bins": 64, "text_context": 96, )"
                                          R"("image": {"heads": 2}, "lm": {"heads": 3}, "cross_attention_every": )") +
                                  std::to_string(cross_attention_every) + ", \"content_grid\": " +
                                  std::to_string(content_grid) + ", \"frames\": " + std::to_string(frames) + "}");
    for (const auto& [name, p] : model.named_parameters()) {
      write(file.get(), "params/" + name, p);
      BOOST_REQUIRE(p.grad().defined());
      write(file.get(), "grads/" + name, p.grad());
    }
    write(file.get(), "batch/images", images);
    write(file.get(), "batch/ids", id_t);
    write(file.get(), "batch/prefix_lengths", prefix_t);
    write(file.get(), "batch/targets", target_t);
    Tensor out = logits.detach().contiguous().clone();
    if (logit_change != 0) out.data<float>()[123] += float(logit_change);
    write(file.get(), "out/logits", out);
    write(file.get(), "out/loss", Tensor::scalar(loss.item(), DType::f64));
  };
  write_dump(dir / "dump.h5", 0);
  const auto [status, output] = check(dir / "dump.h5");
  BOOST_TEST_MESSAGE(output);
  BOOST_CHECK_MESSAGE(status == 0, "bench/vlm_torch.py check disagrees (or could not run; PyTorch and h5py are "
                                   "declared test dependencies):\n" << output);
  write_dump(dir / "changed.h5", 0.05);
  const auto [changed_status, changed_output] = check(dir / "changed.h5");
  BOOST_CHECK_MESSAGE(changed_status != 0, "a dump with one logit changed by 0.05 passed the check:\n" << changed_output);
  fs::remove_all(dir);
}

}  // namespace

// Both image stems: timm's patch projection and the convolutional one (model.image.patch_stem: conv).
BOOST_AUTO_TEST_CASE(forward_and_backward_agree_with_pytorch) { agrees_with_pytorch(nn::ViTConfig::Stem::patch); }
BOOST_AUTO_TEST_CASE(with_a_conv_stem_too) { agrees_with_pytorch(nn::ViTConfig::Stem::conv); }
// The fusions of issue 18: gated cross-attention after every block and after every other; dual tokens
// with one and with four content tokens; the blind LM.
BOOST_AUTO_TEST_CASE(with_cross_attention_dual_tokens_and_blind) {
  agrees_with_pytorch(nn::ViTConfig::Stem::patch, nn::VlmConfig::Fusion::cross_attention, 1);
  agrees_with_pytorch(nn::ViTConfig::Stem::patch, nn::VlmConfig::Fusion::cross_attention, 2);
  agrees_with_pytorch(nn::ViTConfig::Stem::patch, nn::VlmConfig::Fusion::dual_token, 1, 1);
  agrees_with_pytorch(nn::ViTConfig::Stem::patch, nn::VlmConfig::Fusion::dual_token, 1, 2);
  agrees_with_pytorch(nn::ViTConfig::Stem::patch, nn::VlmConfig::Fusion::none);
}
// Clips of 3 frames (issue 18's multi-frame samples): every fusion that reads them.
BOOST_AUTO_TEST_CASE(with_clips_of_frames) {
  agrees_with_pytorch(nn::ViTConfig::Stem::patch, nn::VlmConfig::Fusion::prefix, 1, 1, 3);
  agrees_with_pytorch(nn::ViTConfig::Stem::patch, nn::VlmConfig::Fusion::cross_attention, 2, 1, 3);
  agrees_with_pytorch(nn::ViTConfig::Stem::conv, nn::VlmConfig::Fusion::dual_token, 1, 2, 3);
}

BOOST_AUTO_TEST_SUITE_END()
