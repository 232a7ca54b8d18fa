// `tessera train / tokenize / decode` end to end on a tiny data set for each tokenizer: the token
// file's contents and attributes, decode(tokenize(x)) equal to the checkpoint's reconstruction of
// x, the reconstruction grids, and clear refusals of bad token files.
#include <hdf5.h>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstring>

#include "tests/support/cli_helpers.h"
#include "autograd/engine.h"
#include "data/dataset.h"
#include "data/hdf5_util.h"
#include "data/loader.h"
#include "nn/autoencoder.h"
#include "train/checkpoint.h"
#include "train/experiment.h"
#include "train/safetensors.h"

using namespace tessera;
using testing::run_tessera;

namespace {

// n 8x8 gray images of a bright square at a place that depends on the label (4 classes).
void write_squares(const std::string& path, int64_t n) {
  data::DatasetWriter writer(path, 8, 8, 1, {"nw", "ne", "sw", "se"});
  std::vector<uint8_t> images(size_t(n * 64), 20);
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    labels[size_t(i)] = i % 4;
    const int64_t y0 = (i % 4) / 2 * 4 + (i / 4) % 2, x0 = (i % 2) * 4 + (i / 8) % 2;
    for (int64_t y = y0; y < y0 + 3; ++y)
      for (int64_t x = x0; x < x0 + 3; ++x) images[size_t(i * 64 + y * 8 + x)] = uint8_t(200 + i % 50);
  }
  writer.append(images.data(), n, labels.data());
  writer.close();
}

std::string recipe_for(const std::string& model_section, const std::string& data) {
  return "seed: 3\nthreads: 1\n"
         "data: {train: " + data + ", eval: " + data + ", mean: [0.0], std: [1.0], prefetch: 0}\n"
         "model:\n" + model_section +
         "loss: {type: mse}\n"
         "optim: {type: adam, lr: 0.003}\n"
         "schedule: {type: constant}\n"
         "train: {steps: 12, batch_size: 8}\n"
         "eval: {batch_size: 16, metrics: [psnr, ssim, mse, loss, bits_per_image]}\n"
         "log: {every: 6}\n";
}

// A dataset of a token file, as int64 (integer) or float (floating point).
template <class T>
std::vector<T> read_all(const std::string& path, const char* name, std::vector<hsize_t>* dims) {
  data::h5::silence_errors();
  data::h5::Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  BOOST_REQUIRE(file.valid());
  data::h5::Handle d(H5Dopen2(file.get(), name, H5P_DEFAULT));
  data::h5::Handle space(H5Dget_space(d.get()));
  dims->resize(size_t(H5Sget_simple_extent_ndims(space.get())));
  H5Sget_simple_extent_dims(space.get(), dims->data(), nullptr);
  size_t n = 1;
  for (hsize_t v : *dims) n *= v;
  std::vector<T> out(n);
  H5Dread(d.get(), std::is_same_v<T, float> ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data());
  return out;
}

std::string string_attribute(const std::string& path, const char* name) {
  data::h5::Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  data::h5::Handle attr(H5Aopen(file.get(), name, H5P_DEFAULT));
  std::vector<std::string> values;
  if (!data::h5::read_strings_attribute(attr.get(), values) || values.empty()) return "";
  return values[0];
}

template <class T>
void write_tokens(const std::string& path, const std::vector<T>& values, std::vector<hsize_t> dims) {
  data::h5::Handle file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  data::h5::Handle space(H5Screate_simple(int(dims.size()), dims.data(), nullptr));
  const hid_t type = std::is_same_v<T, float> ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT32;
  data::h5::Handle d(H5Dcreate2(file.get(), "tokens", type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  H5Dwrite(d.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
}

// The checkpoint's evaluation-mode reconstructions and tokens of every image, batched as the recipe's eval.
struct Expected {
  std::vector<uint8_t> pixels;
  std::vector<double> tokens;
};
Expected reconstruct(const std::string& checkpoint, const std::string& dataset) {
  const train::Checkpoint c = train::load_checkpoint(checkpoint);
  const train::Recipe recipe = train::Recipe::parse(c.meta.recipe, checkpoint);
  train::DataShape shape;
  shape.channels = c.meta.input_shape[0], shape.height = c.meta.input_shape[1], shape.width = c.meta.input_shape[2];
  Generator gen(0);
  auto module = train::build_model(recipe, shape, gen);
  module->load_state(c.params);
  module->eval();
  auto& model = dynamic_cast<nn::Autoencoder&>(*module);
  const data::Loader loader(data::Dataset::open(dataset), train::loader_options(recipe, false));
  Expected e;
  NoGradGuard no_grad;
  for (int64_t b = 0; b < loader.batches_per_epoch(); ++b) {
    const data::Batch batch = loader.make_batch(0, b);
    const Tensor recon = model.forward(batch.images).reconstruction.permute({0, 2, 3, 1}).contiguous();
    for (float v : recon.to_vector<float>()) e.pixels.push_back(uint8_t(std::lround(std::clamp(v, 0.0f, 1.0f) * 255.0f)));
    for (double v : model.tokenize(batch.images).to_vector<double>()) e.tokens.push_back(v);
  }
  return e;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tokens_cli)

BOOST_AUTO_TEST_CASE(train_tokenize_decode_round_trip) {
  const testing::ScratchDir dir("tokens_cli");
  const std::string data = dir / "squares.h5";
  write_squares(data, 40);
  const std::vector<std::pair<std::string, std::string>> models{
      {"vae", "  type: vae\n  encoder: plain\n  latent_channels: 3\n"},
      {"vqvae", "  type: vqvae\n  encoder: plain\n  code_dim: 8\n  codebook_size: 16\n  dead_code_steps: 4\n"},
      {"fsq", "  type: fsq\n  encoder: plain\n  levels: [5, 4, 3]\n"}};
  for (const auto& [name, section] : models) {
    BOOST_TEST_CONTEXT(name) {
      const std::string recipe = dir / (name + ".yaml"), run = dir / ("run_" + name);
      testing::write_file(recipe, recipe_for(section, data));
      auto r = run_tessera("train " + recipe + " --run-dir " + run);
      BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
      BOOST_TEST(std::filesystem::exists(run + "/samples/reconstructions_last.png"));
      BOOST_TEST(r.output.find("psnr") != std::string::npos);
      // The run's report: reconstructions inline; for hard tokens the codebook and its codes.
      const std::string html = testing::read_file(run + "/report.html");
      BOOST_TEST(html.find("<figcaption>reconstructions_step_0000012.png</figcaption>") != std::string::npos);
      const bool hard = name != "vae";
      BOOST_TEST((html.find("<section id=\"codebook\">") != std::string::npos) == hard);
      BOOST_TEST((html.find("<section id=\"codes\">") != std::string::npos) == hard);
      BOOST_TEST(html.find("<section id=\"attention\">") == std::string::npos);
      BOOST_TEST(html.find("could not be made") == std::string::npos);
      if (hard) BOOST_TEST(html.find("tokens per code, most used first") != std::string::npos);
      BOOST_TEST((html.find("<section id=\"generated\">") != std::string::npos) == (name == "vae"));

      const std::string ckpt = run + "/last.h5", tokens = dir / (name + "_tokens.h5"), decoded = dir / (name + "_decoded.h5");
      r = run_tessera("tokenize " + ckpt + " " + data + " " + tokens);
      BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
      r = run_tessera("decode " + ckpt + " " + tokens + " " + decoded);
      BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);

      const Expected expected = reconstruct(ckpt, data);
      std::vector<hsize_t> dims;
      const bool soft = name == "vae";
      const std::vector<double> stored = soft ? [&] { auto f = read_all<float>(tokens, "tokens", &dims); return std::vector<double>(f.begin(), f.end()); }()
                                              : [&] { auto i = read_all<int64_t>(tokens, "tokens", &dims); return std::vector<double>(i.begin(), i.end()); }();
      BOOST_TEST(dims == (soft ? std::vector<hsize_t>{40, 2, 2, 3} : std::vector<hsize_t>{40, 2, 2}), boost::test_tools::per_element());
      BOOST_TEST(stored == expected.tokens, boost::test_tools::per_element());
      BOOST_TEST(string_attribute(tokens, "model") == name);
      BOOST_TEST(string_attribute(tokens, "checkpoint") == ckpt);
      BOOST_TEST(string_attribute(tokens, "decode").find("tessera decode") == 0u);

      const auto out = data::Dataset::open(decoded);
      BOOST_TEST(out->size() == 40);
      std::vector<uint8_t> pixels(40 * 64);
      out->read_range(0, 40, pixels.data());
      BOOST_TEST(pixels == expected.pixels, boost::test_tools::per_element());
      BOOST_TEST(out->info().has_labels);
      BOOST_TEST(out->label(5) == 1);
    }
  }
}

// Data-parallel tokenizers: a VAE's sampling noise is drawn per micro-batch, so two processes end
// bitwise where one process cutting each batch in two ends; a VQ-VAE, whose codebook is set from
// the first batch and whose statistics follow each batch outside the gradients, is refused.
BOOST_AUTO_TEST_CASE(data_parallel_vae_equals_accumulation_and_vq_is_refused,
                     *boost::unit_test::precondition(testing::mpi_available)) {
  BOOST_REQUIRE_MESSAGE(testing::mpi_missing().empty(), testing::mpi_missing());
  const testing::ScratchDir dir("tokens_mpi");
  const std::string data = dir / "squares.h5";
  write_squares(data, 40);
  testing::write_file(dir / "vae.yaml", recipe_for("  type: vae\n  encoder: plain\n  latent_channels: 3\n", data));
  auto r = run_tessera("train vae.yaml --run-dir one --set train.accumulation=2", dir.path.string());
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  r = testing::run_tessera_mpi(2, "train vae.yaml --run-dir two", dir.path.string());
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const train::Checkpoint one = train::load_checkpoint(dir / "one/last.h5"), two = train::load_checkpoint(dir / "two/last.h5");
  BOOST_REQUIRE(!one.params.empty());
  for (const auto& [name, t] : one.params)
    BOOST_TEST(t.to_vector<float>() == two.params.at(name).to_vector<float>(), name);

  testing::write_file(dir / "vq.yaml", recipe_for("  type: vqvae\n  encoder: plain\n  code_dim: 8\n  codebook_size: 16\n", data));
  r = testing::run_tessera_mpi(2, "train vq.yaml --run-dir vq", dir.path.string());
  BOOST_TEST(r.exit_code != 0, r.output);
  BOOST_TEST(r.output.find("step 1: 'quantizer.codebook' differs between process 0 and process 1") != std::string::npos, r.output);
  BOOST_TEST(!std::filesystem::exists(dir / "vq/last.h5"));
}

// Killed mid-run and resumed, a tokenizer ends bitwise where an uninterrupted run ends: the
// k-means initialisation flag, the codes' idle counters and EMA statistics (buffers), and the
// random draws of dead-code restarts and of the VAE's sampling all come back from the checkpoint.
BOOST_AUTO_TEST_CASE(killed_and_resumed_tokenizer_runs_are_bitwise_identical) {
  const testing::ScratchDir dir("tokens_resume");
  const std::string data = dir / "squares.h5";
  write_squares(data, 40);
  const std::vector<std::pair<std::string, std::string>> models{
      {"vae", "  type: vae\n  encoder: plain\n  latent_channels: 3\n"},
      // 16 codes for 32 encoder outputs a batch, restarted after one idle step: restarts every step.
      {"vqvae", "  type: vqvae\n  encoder: plain\n  code_dim: 8\n  codebook_size: 16\n  dead_code_steps: 1\n"},
      {"vqvae_ema", "  type: vqvae\n  encoder: plain\n  code_dim: 8\n  codebook_size: 16\n  dead_code_steps: 1\n"
                    "  codebook_update: ema\n"}};
  for (const auto& [name, section] : models) {
    BOOST_TEST_CONTEXT(name) {
      const std::string recipe = dir / (name + ".yaml"), whole = dir / ("whole_" + name), parts = dir / ("parts_" + name);
      testing::write_file(recipe, recipe_for(section, data) + "checkpoint: {every: 5}\n");
      auto r = run_tessera("train " + recipe + " --run-dir " + whole);
      BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
      r = run_tessera("train " + recipe + " --run-dir " + parts + " --debug-kill-after 8");
      BOOST_REQUIRE_MESSAGE(r.signal == SIGKILL, "expected SIGKILL; got exit " << r.exit_code << "\n" << r.output);
      BOOST_TEST(train::load_checkpoint(parts + "/last.h5").meta.step == 5);
      r = run_tessera("train --resume " + parts);
      BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
      // The progress log counts the restarts of each interval (steps 1-6, 7-12); none for a VAE.
      const std::vector<double> restarts = testing::train_log_values(whole + "/metrics.jsonl", "vq_restarts");
      if (name == "vae") {
        BOOST_TEST(restarts.empty());
      } else {
        BOOST_TEST_REQUIRE(restarts.size() == 2u);
        BOOST_TEST(restarts[0] > 0);
        BOOST_TEST(restarts[1] > 0);
        BOOST_TEST(r.output.find("vq_restarts ") != std::string::npos, r.output);
      }
      const train::Checkpoint a = train::load_checkpoint(whole + "/last.h5"), b = train::load_checkpoint(parts + "/last.h5");
      BOOST_TEST(a.meta.step == 12);
      BOOST_TEST(b.meta.step == 12);
      BOOST_REQUIRE_EQUAL(a.params.size(), b.params.size());
      for (const auto& [param, t] : a.params) {
        const Tensor& u = b.params.at(param);
        BOOST_REQUIRE(t.shape() == u.shape());
        BOOST_TEST(std::memcmp(t.raw_data(), u.raw_data(), size_t(t.numel()) * element_size(t.dtype())) == 0,
                   param << " differs after the resume");
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(bad_token_files_are_refused) {
  const testing::ScratchDir dir("tokens_bad");
  const std::string data = dir / "squares.h5";
  write_squares(data, 16);
  const std::string recipe = dir / "vq.yaml", run = dir / "run";
  testing::write_file(recipe, recipe_for("  type: vqvae\n  encoder: plain\n  code_dim: 8\n  codebook_size: 16\n", data));
  auto r = run_tessera("train " + recipe + " --run-dir " + run + " --set train.steps=2");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const std::string ckpt = run + "/last.h5", out = dir / "out.h5";
  testing::write_file(out, "keep me");

  write_tokens<int32_t>(dir / "shape.h5", std::vector<int32_t>(2 * 3 * 3, 0), {2, 3, 3});
  r = run_tessera("decode " + ckpt + " " + dir / "shape.h5" + " " + out);
  BOOST_TEST(r.exit_code != 0);
  BOOST_TEST(r.output.find("[2, 3, 3]") != std::string::npos, r.output);

  std::vector<int32_t> codes(2 * 2 * 2, 1);
  codes[5] = 16;
  write_tokens<int32_t>(dir / "range.h5", codes, {2, 2, 2});
  r = run_tessera("decode " + ckpt + " " + dir / "range.h5" + " " + out + " --overwrite");  // fails before replacing
  BOOST_TEST(r.exit_code != 0);
  BOOST_TEST(r.output.find("outside the codebook") != std::string::npos, r.output);

  write_tokens<float>(dir / "float.h5", std::vector<float>(8, 0.f), {2, 2, 2});
  r = run_tessera("decode " + ckpt + " " + dir / "float.h5" + " " + out);
  BOOST_TEST(r.exit_code != 0);
  BOOST_TEST(r.output.find("float") != std::string::npos, r.output);

  r = run_tessera("decode " + ckpt + " " + dir / "missing.h5" + " " + out);
  BOOST_TEST(r.exit_code != 0);
  BOOST_TEST(testing::read_file(out) == "keep me");  // nothing was overwritten

  write_tokens<int32_t>(dir / "empty.h5", {}, {0, 2, 2});
  r = run_tessera("decode " + ckpt + " " + dir / "empty.h5" + " " + out);
  BOOST_TEST(r.exit_code != 0);
  BOOST_TEST(r.output.find("holds no images") != std::string::npos, r.output);
  BOOST_TEST(testing::read_file(out) == "keep me");

  // A writer killed before its rename left out.h5.tmp-PID-0 (its process is gone): the next one clears it.
  const std::string stale = out + ".tmp-999999999-0";
  testing::write_file(stale, "torn");
  codes[5] = 15;
  write_tokens<int32_t>(dir / "good.h5", codes, {2, 2, 2});
  // An existing file that an earlier decode did not write (here a text file; a training set
  // alike) is kept unless --overwrite; an earlier decode's output is replaced.
  r = run_tessera("decode " + ckpt + " " + dir / "good.h5" + " " + out);
  BOOST_TEST(r.exit_code != 0);
  BOOST_TEST(r.output.find("exists and was not written by tessera decode; pass --overwrite") != std::string::npos, r.output);
  BOOST_TEST(testing::read_file(out) == "keep me");
  r = run_tessera("decode " + ckpt + " " + dir / "good.h5" + " " + out + " --overwrite");
  BOOST_TEST(r.exit_code == 0, r.output);
  BOOST_TEST(data::Dataset::open(out)->size() == 2);
  BOOST_TEST(!std::filesystem::exists(stale));
  r = run_tessera("decode " + ckpt + " " + dir / "good.h5" + " " + out);
  BOOST_TEST(r.exit_code == 0, r.output);
  const std::string training_set = testing::read_file(data);
  r = run_tessera("decode " + ckpt + " " + dir / "good.h5" + " " + data);
  BOOST_TEST(r.exit_code != 0);
  BOOST_TEST(testing::read_file(data) == training_set);
  // tokenize never writes over a data set (its outputs are token files).
  r = run_tessera("tokenize " + ckpt + " " + data + " " + out);
  BOOST_TEST(r.output.find("is an image data set; it is not replaced") != std::string::npos, r.output);
  BOOST_TEST(data::Dataset::open(out)->size() == 2);

  // A VAE's latents must be finite: a NaN decodes to a plausible grey image, so it is refused.
  testing::write_file(dir / "vae.yaml", recipe_for("  type: vae\n  encoder: plain\n  latent_channels: 3\n", data));
  r = run_tessera("train " + dir / "vae.yaml" + " --run-dir " + dir / "vae" + " --set train.steps=2");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  r = run_tessera("tokenize " + dir / "vae/last.h5" + " " + data + " " + dir / "latents.h5");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  std::vector<hsize_t> dims;
  std::vector<float> latents = read_all<float>(dir / "latents.h5", "tokens", &dims);
  latents[7] = std::nanf("");
  write_tokens<float>(dir / "nan.h5", latents, std::vector<hsize_t>(dims.begin(), dims.end()));
  r = run_tessera("decode " + dir / "vae/last.h5" + " " + dir / "nan.h5" + " " + dir / "nan_out.h5");
  BOOST_TEST(r.exit_code != 0);
  BOOST_TEST(r.output.find("latent value 7 (image 0) is nan; latents must be finite") != std::string::npos, r.output);
  BOOST_TEST(!std::filesystem::exists(dir / "nan_out.h5"));
}

// A VQ-VAE exported under Tessera's names keeps its buffers apart (OUT.buffers.safetensors), and
// model.from takes both back: the k-means "initialized" flag with them, so the codebook is not
// re-initialised (one step at learning rate 0 leaves it as exported).
BOOST_AUTO_TEST_CASE(exported_tokenizer_keeps_its_buffers_apart_and_comes_back_with_them) {
  const testing::ScratchDir dir("tokens_export");
  const std::string data = dir / "squares.h5";
  write_squares(data, 40);
  testing::write_file(dir / "vq.yaml", recipe_for("  type: vqvae\n  encoder: plain\n  code_dim: 8\n  codebook_size: 16\n", data));
  auto r = run_tessera("train vq.yaml --run-dir run", dir.path.string());
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  r = run_tessera("export run/last.h5 out/vq.safetensors", dir.path.string());
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  BOOST_TEST(r.output.find("buffers (state that is not trained") != std::string::npos, r.output);
  const auto params = train::read_safetensors(dir / "out/vq.safetensors");
  const auto buffers = train::read_safetensors(dir / "out/vq.buffers.safetensors");
  const auto has = [](const train::SafetensorsFile& f, const std::string& name) {
    return std::any_of(f.tensors.begin(), f.tensors.end(), [&](const auto& t) { return t.first == name; });
  };
  BOOST_TEST(has(params, "quantizer.codebook"));
  BOOST_TEST(!has(params, "quantizer.initialized"));
  BOOST_TEST(has(buffers, "quantizer.initialized"));
  BOOST_TEST(has(buffers, "quantizer.idle_steps"));
  BOOST_TEST(params.metadata.at("tessera_model_type") == "vqvae");

  r = run_tessera("train vq.yaml --run-dir again --set model.from=out/vq.safetensors --set train.steps=1 --set optim.lr=0",
                  dir.path.string());
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const train::Checkpoint before = train::load_checkpoint(dir / "run/last.h5"), after = train::load_checkpoint(dir / "again/last.h5");
  BOOST_TEST(after.params.at("quantizer.initialized").to_vector<float>()[0] == 1.f);
  BOOST_TEST(after.params.at("quantizer.codebook").to_vector<float>() == before.params.at("quantizer.codebook").to_vector<float>());
}

BOOST_AUTO_TEST_SUITE_END()
