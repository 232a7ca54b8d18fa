// Checkpoints: a round trip keeps every tensor bit for bit, h5py reads the layout documented in
// train/checkpoint.h, and failures never damage an existing checkpoint.
#include <boost/test/unit_test.hpp>

#include <filesystem>

#include "autograd/error.h"
#include "autograd/random.h"
#include "data/hdf5_util.h"
#include "tests/support/cli_helpers.h"
#include "train/checkpoint.h"

using namespace tessera;
using namespace tessera::train;
using tessera::testing::ScratchDir;

namespace {
Checkpoint sample_checkpoint() {
  Generator gen(7);
  Checkpoint c;
  c.params["layers.0.weight"] = randn({4, 3}, gen);
  c.params["layers.0.bias"] = randn({4}, gen);
  c.ema["layers.0.weight"] = randn({4, 3}, gen);
  c.optim["step"] = Tensor::scalar(12, DType::i64);
  c.optim["exp_avg/layers.0.weight"] = randn({4, 3}, gen);
  c.optim["exp_avg_sq/layers.0.bias"] = rand({4}, gen, DType::f64);
  c.meta.step = 12, c.meta.epoch = 2, c.meta.loader_epoch = 2, c.meta.loader_position = 5, c.meta.loader_seed = 99;
  c.meta.rng_seed = 3, c.meta.rng_offset = 1ull << 40, c.meta.best_value = 0.875;
  c.meta.recipe = "seed: 3\nmodel:\n  type: mlp  # ünïcode\n";
  c.meta.recipe_name = "tiny";
  c.meta.input_shape = {1, 6, 6};
  c.meta.num_classes = 3;
  return c;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.contiguous().raw_data(), b.contiguous().raw_data(), size_t(a.numel()) * element_size(a.dtype())) == 0;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(checkpoint)

BOOST_AUTO_TEST_CASE(round_trip_is_exact) {
  ScratchDir dir("ckpt_round_trip");
  const Checkpoint c = sample_checkpoint();
  save_checkpoint(dir / "last.h5", c);
  BOOST_TEST(!std::filesystem::exists(dir / "last.h5.tmp"));
  const Checkpoint r = load_checkpoint(dir / "last.h5");
  for (auto group : {&Checkpoint::params, &Checkpoint::ema, &Checkpoint::optim}) {
    BOOST_REQUIRE_EQUAL((c.*group).size(), (r.*group).size());
    for (const auto& [name, t] : c.*group) {
      BOOST_REQUIRE_MESSAGE((r.*group).count(name), name);
      BOOST_TEST(same_bits(t, (r.*group).at(name)), name);
    }
  }
  BOOST_TEST(r.meta.step == 12);
  BOOST_TEST(r.meta.loader_position == 5);
  BOOST_TEST(r.meta.rng_offset == (1ull << 40));
  BOOST_TEST(r.meta.best_value == 0.875);
  BOOST_TEST(r.meta.recipe == c.meta.recipe);
  BOOST_TEST(r.meta.input_shape == c.meta.input_shape);
  BOOST_TEST(r.meta.format_version == kCheckpointFormatVersion);
}

BOOST_AUTO_TEST_CASE(h5py_reads_the_documented_layout) {
  ScratchDir dir("ckpt_h5py");
  const Checkpoint c = sample_checkpoint();
  save_checkpoint(dir / "c.h5", c);
  const std::string script = R"(import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
w = f["params"]["layers.0.weight"]
assert w.shape == (4, 3) and w.dtype == np.float32, (w.shape, w.dtype)
assert f["optim"]["exp_avg"]["layers.0.weight"].shape == (4, 3)
assert int(f["optim"]["step"][()]) == 12
m = f["meta"].attrs
assert int(m["step"]) == 12 and int(m["format_version"]) == 1 and list(m["input_shape"]) == [1, 6, 6]
recipe = m["recipe"]
recipe = recipe.decode() if isinstance(recipe, bytes) else recipe
assert "ünïcode" in recipe, recipe
print(repr(float(w[1, 2])))
)";
  tessera::testing::write_file(dir / "check.py", script);
  FILE* pipe = popen(("/usr/bin/python3 " + (dir / "check.py") + " " + (dir / "c.h5") + " 2>&1").c_str(), "r");
  std::string out;
  char buffer[1024];
  while (std::fgets(buffer, sizeof buffer, pipe)) out += buffer;
  BOOST_TEST(pclose(pipe) == 0, out);
  BOOST_TEST(std::abs(std::stod(out) - c.params.at("layers.0.weight").at({1, 2})) < 1e-6, out);
}

BOOST_AUTO_TEST_CASE(a_failed_save_leaves_the_old_file) {
  ScratchDir dir("ckpt_failed_save");
  Checkpoint c = sample_checkpoint();
  save_checkpoint(dir / "last.h5", c);
  // The temporary file cannot be created (a directory is in its way): the save fails...
  std::filesystem::create_directory(dir / "last.h5.tmp");
  c.meta.step = 13;
  BOOST_CHECK_THROW(save_checkpoint(dir / "last.h5", c), Error);
  // ...and the previous checkpoint is untouched.
  BOOST_TEST(load_checkpoint(dir / "last.h5").meta.step == 12);
}

BOOST_AUTO_TEST_CASE(bad_files_are_refused_with_their_name) {
  ScratchDir dir("ckpt_bad");
  tessera::testing::write_file(dir / "text.h5", "not hdf5");
  try {
    load_checkpoint(dir / "text.h5");
    BOOST_FAIL("no error");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find("text.h5: not an HDF5 file") != std::string::npos, e.what());
  }
  BOOST_CHECK_THROW(load_checkpoint(dir / "missing.h5"), Error);
  tessera::testing::write_tiny_dataset(dir / "data.h5", 3, 1);  // HDF5, but a data set
  BOOST_CHECK_THROW(load_checkpoint(dir / "data.h5"), Error);
}

// A tensor Tessera cannot hold (a string) or one the machine cannot (2^40 x 4096 floats, declared
// by a small chunked file) is refused by name — by the real binary, which must then exit cleanly:
// an error thrown inside HDF5's visit callback once crashed at exit.
BOOST_AUTO_TEST_CASE(unreadable_tensors_are_refused_and_the_process_exits_cleanly) {
  ScratchDir dir("ckpt_evil");
  const std::string strings = dir / "strings.h5", huge = dir / "huge.h5";
  Checkpoint c = sample_checkpoint();
  c.meta.recipe = "data:\n  train: absent.h5\nmodel:\n  type: mlp\n";  // valid, so the command reaches the tensors
  save_checkpoint(strings, c);
  save_checkpoint(huge, c);
  {
    data::h5::Handle file(H5Fopen(strings.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    data::h5::Handle type(H5Tcopy(H5T_C_S1));
    H5Tset_size(type.get(), H5T_VARIABLE);
    const hsize_t one = 1;
    data::h5::Handle space(H5Screate_simple(1, &one, nullptr));
    data::h5::Handle ds(H5Dcreate2(file.get(), "params/words", type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    BOOST_REQUIRE(ds.valid());
  }
  {
    data::h5::Handle file(H5Fopen(huge.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    const hsize_t dims[2] = {hsize_t(1) << 40, 4096}, chunk[2] = {1, 4096};
    data::h5::Handle space(H5Screate_simple(2, dims, nullptr));
    data::h5::Handle plist(H5Pcreate(H5P_DATASET_CREATE));
    H5Pset_chunk(plist.get(), 2, chunk);
    data::h5::Handle ds(H5Dcreate2(file.get(), "params/layers.1.weight", H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, plist.get(), H5P_DEFAULT));
    BOOST_REQUIRE(ds.valid());
  }
  BOOST_TEST(std::filesystem::file_size(huge) < 100000u);
  for (const auto& [path, wanted] : {std::pair<std::string, std::string>{strings, "params/words"},
                                     {huge, "params/layers.1.weight: shape [1099511627776, 4096] needs"}}) {
    BOOST_CHECK_THROW(load_checkpoint(path), Error);
    const tessera::testing::RunResult r = tessera::testing::run_tessera("export '" + path + "' " + dir / "out.safetensors");
    BOOST_TEST(r.exit_code == 1, r.output);  // an error, not a signal
    BOOST_TEST(r.signal == 0, r.output);
    BOOST_TEST(r.output.find(wanted) != std::string::npos, r.output);
  }
}

BOOST_AUTO_TEST_SUITE_END()
