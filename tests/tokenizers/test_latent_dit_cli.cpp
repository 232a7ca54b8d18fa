// latent_dit end to end through the `tessera` binary on a tiny data set (issue 19): a VAE and a
// ViT classifier are trained first, then the DiT on the VAE's latents. A short run lowers the
// denoising loss; `eval` gives every generation metric, and the same figures twice; `sample`
// draws the same images from the same seed and others from another; `interpolate` walks between
// two images' latents; and the models that cannot do what is asked are refused by name.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <filesystem>

#include "data/dataset.h"
#include "tests/support/cli_helpers.h"

using namespace tessera;
using namespace tessera::testing;

namespace {

std::string recipe(const std::string& model, const std::string& loss, const std::string& train) {
  return "seed: 5\nthreads: 1\n"
         "data: {train: train.h5, eval: eval.h5, mean: [0.0], std: [1.0], prefetch: 0}\n"
         "model:\n" + model + "loss: {type: " + loss + "}\n"
         "optim: {type: adam, lr: 0.003}\nschedule: {type: constant}\n"
         "train: {" + train + "}\n"
         "eval: {every: 1000, batch_size: 16}\ncheckpoint: {every: 1000}\nlog: {every: 10, report: false}\n";
}

std::vector<uint8_t> images_of(const std::string& path) {
  const auto set = data::Dataset::open(path);
  std::vector<uint8_t> pixels(static_cast<size_t>(set->size() * 64));
  set->read_range(0, set->size(), pixels.data());
  return pixels;
}

struct Trained {
  ScratchDir dir{"latent_dit"};
  Trained() {
    write_square_corners(dir / "train.h5", 64, 8);
    write_square_corners(dir / "eval.h5", 32, 8);
    write_file(dir / "vae.yaml", recipe("  type: vae\n  hidden: [8, 8]\n  latent_channels: 2\n", "mse",
                                        "steps: 60, batch_size: 16"));
    write_file(dir / "vit.yaml", recipe("  type: vit\n  patch_size: 4\n  width: 16\n  depth: 1\n  heads: 2\n  mlp_ratio: 2\n"
                                        "  pooling: avg\n", "cross_entropy", "steps: 40, batch_size: 16"));
    const std::string dit = "  type: latent_dit\n  vae: {from: runs/vae/last.h5}\n  width: 32\n  depth: 2\n  heads: 2\n"
                            "  timesteps: 100\n  sampling: {steps: 5, guidance: 2}\n"
                            "  evaluation: {classifier: runs/vit/last.h5, samples: 40}\n";
    write_file(dir / "dit.yaml", recipe(dit, "denoising_mse", "steps: 120, batch_size: 16"));
    for (const std::string name : {"vae", "vit", "dit"}) {
      const RunResult r = run_tessera("train " + name + ".yaml --run-dir runs/" + name, dir.path.string());
      BOOST_TEST_REQUIRE(r.exit_code == 0, name << ": " << r.output);
      if (name == "dit") train_output = r.output;
    }
  }
  std::string train_output;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(latent_dit_cli)

BOOST_AUTO_TEST_CASE(trains_evaluates_samples_and_interpolates) {
  Trained t;
  const std::string cwd = t.dir.path.string();
  BOOST_TEST(t.train_output.find("latent scale: 1 / ") != std::string::npos, t.train_output);
  // The untrained DiT predicts 0, a loss of E[noise^2] = 1; a short run must go well below.
  const std::vector<double> loss = train_log_values(t.dir / "runs/dit/metrics.jsonl", "loss");
  BOOST_TEST_REQUIRE(loss.size() >= 10);
  BOOST_TEST(loss.front() > 0.6);
  const double last = (loss[loss.size() - 1] + loss[loss.size() - 2] + loss[loss.size() - 3]) / 3;
  BOOST_TEST(last < 0.7 * loss.front(), "first " << loss.front() << ", last three " << last);

  const RunResult e1 = run_tessera("eval runs/dit/last.h5 --json", cwd), e2 = run_tessera("eval runs/dit/last.h5 --json", cwd);
  BOOST_TEST_REQUIRE(e1.exit_code == 0, e1.output);
  const std::map<std::string, double> m = flat_json_numbers(e1.output.substr(e1.output.find('{')));
  for (const char* key : {"loss", "fd_vit", "fd_vit_floor", "sample_accuracy", "precision", "recall"}) {
    BOOST_TEST_REQUIRE(m.count(key), key << " missing: " << e1.output);
    BOOST_TEST(std::isfinite(m.at(key)), key);
  }
  BOOST_TEST(m.at("fd_vit") >= 0);
  BOOST_TEST((m.at("sample_accuracy") >= 0 && m.at("sample_accuracy") <= 1));
  BOOST_TEST(e1.output == e2.output);  // same seed, same samples, same figures
  // eval --set: another guidance samples other images (the loss, on real images, stays); a shape
  // change is refused naming the checkpoint.
  const RunResult g = run_tessera("eval runs/dit/last.h5 --json --set model.sampling.guidance=1", cwd);
  BOOST_TEST_REQUIRE(g.exit_code == 0, g.output);
  const std::map<std::string, double> mg = flat_json_numbers(g.output.substr(g.output.find('{')));
  BOOST_TEST(mg.at("loss") == m.at("loss"));
  BOOST_TEST(mg.at("fd_vit") != m.at("fd_vit"));
  const RunResult w = run_tessera("eval runs/dit/last.h5 --set model.width=64", cwd);
  BOOST_TEST(w.exit_code == 1);
  BOOST_TEST(w.output.find("checkpoint runs/dit/last.h5: ") != std::string::npos, w.output);

  // sample: the same seed gives the same images, another seed others; a row of 3 per class.
  const RunResult s1 = run_tessera("sample runs/dit/last.h5 --n 3 --seed 1 --out a.png --h5 a.h5", cwd);
  BOOST_TEST_REQUIRE(s1.exit_code == 0, s1.output);
  BOOST_TEST(s1.output.find("12 images (3 per class: nw, ne, sw, se)") != std::string::npos, s1.output);
  BOOST_TEST(run_tessera("sample runs/dit/last.h5 --n 3 --seed 1 --out b.png --h5 b.h5", cwd).exit_code == 0);
  BOOST_TEST(run_tessera("sample runs/dit/last.h5 --n 3 --seed 2 --out c.png --h5 c.h5 --sampler ddpm", cwd).exit_code == 0);
  BOOST_TEST(std::filesystem::file_size(t.dir / "a.png") > 0);
  BOOST_TEST((images_of(t.dir / "a.h5") == images_of(t.dir / "b.h5")));
  BOOST_TEST((images_of(t.dir / "a.h5") != images_of(t.dir / "c.h5")));
  const auto set = data::Dataset::open(t.dir / "a.h5");
  BOOST_TEST(set->size() == 12);
  BOOST_TEST(set->info().class_names == (std::vector<std::string>{"nw", "ne", "sw", "se"}), boost::test_tools::per_element());
  const RunResult one = run_tessera("sample runs/dit/last.h5 --class SW --n 2 --out one.png", cwd);
  BOOST_TEST(one.output.find("2 images (2 per class: sw)") != std::string::npos, one.output);

  const RunResult walk = run_tessera("interpolate runs/dit/last.h5 --from 0 --to 3 --steps 5 --out walk.png", cwd);
  BOOST_TEST(walk.exit_code == 0, walk.output);
  BOOST_TEST(std::filesystem::exists(t.dir / "walk.png"));
  BOOST_TEST(run_tessera("interpolate runs/vae/last.h5 --from 1 --to 2 --out walk2.png", cwd).exit_code == 0);

  // Refusals, each naming what is wrong.
  const auto refused = [&](const std::string& args, const std::string& message) {
    const RunResult r = run_tessera(args, cwd);
    BOOST_TEST(r.exit_code == 1, args << ": " << r.output);
    BOOST_TEST(r.output.find(message) != std::string::npos, args << ": " << r.output);
  };
  refused("sample runs/vae/last.h5 --out v.png", "holds a 'vae' model, which cannot sample images for class labels");
  refused("sample runs/dit/last.h5 --class boot --out v.png", "--class boot: not a class of this model");
  refused("sample runs/dit/last.h5 --out v.txt", "--out v.txt: the grid is a PNG");
  write_file(t.dir / "notes.png", "my notes");
  refused("sample runs/dit/last.h5 --out notes.png", "--out notes.png exists and is not a PNG; it is not replaced");
  BOOST_TEST(read_file(t.dir / "notes.png") == "my notes");
  refused("sample runs/dit/last.h5 --out d.png --h5 train.h5", "train.h5 exists and was not written by tessera sample; pass --overwrite");
  refused("interpolate runs/vit/last.h5 --from 0 --to 1 --out w.png", "holds a 'vit' model, which cannot turn images into tokens");
  refused("interpolate runs/vae/last.h5 --from 0 --to 99 --out w.png", "--from/--to 99: eval.h5 holds 32 images");
  refused("train dit.yaml --run-dir runs/bad --set model.vae.from=runs/vit/last.h5",
          "model.vae.from: runs/vit/last.h5 holds a 'vit' model, which does not turn images into tokens and back");
  refused("train dit.yaml --run-dir runs/bad --set model.vae.from=runs/none.h5", "model.vae.from: runs/none.h5 does not exist");
  refused("train dit.yaml --run-dir runs/bad --set model.evaluation.classifier=runs/vit.h5",
          "model.evaluation.classifier: runs/vit.h5 does not exist");
  refused("train dit.yaml --run-dir runs/bad --set data.mean=[0.5] --set data.std=[0.25]",
          "latent_dit's VAE takes pixels in [0, 1], but a batch spans [-1.6");
  refused("train vae.yaml --run-dir runs/bad --set data.mean=[0.5] --set data.std=[0.25]",
          "reconstruction needs pixels in [0, 1], but a batch spans [-1.6");
  BOOST_TEST(!std::filesystem::exists(t.dir / "runs/bad/last.h5"));
}

BOOST_AUTO_TEST_SUITE_END()
