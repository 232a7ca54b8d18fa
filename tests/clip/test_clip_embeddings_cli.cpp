// A dual encoder's image embeddings through the `tessera` command as a user runs it: `tokenize`
// writes them (compared with the model's own encode_image), `probe` fits a linear classifier on
// them, and `eval` reports retrieval recall over the whole evaluated set and the linear-probe
// metric (compared with the library functions on the same embeddings); plus the messages bad
// input gets, and that a failed tokenize leaves an existing output alone.
#include <boost/test/unit_test.hpp>

#include <hdf5.h>

#include <cmath>
#include <regex>

#include "tests/support/cli_helpers.h"
#include "tests/support/h5_files.h"
#include "autograd/ops/contrastive.h"
#include "autograd/engine.h"
#include "autograd/ops.h"
#include "data/hdf5_util.h"
#include "nn/contrastive_metrics.h"
#include "nn/linear_probe.h"
#include "train/models/clip.h"
#include "train/trained_model.h"

using namespace tessera;
using namespace tessera::testing;
namespace tt = boost::test_tools;

namespace {

// One template and one zero-shot prompt, so that each image's caption is known: "a NAME one".
std::string recipe(const std::string& dir, const std::string& type) {
  return "seed: 0\nthreads: 2\n"
         "data:\n  train: " + dir + "/train.h5\n  eval: " + dir + "/test.h5\n  mean: [0.4]\n  std: [0.3]\n"
         "  caption_templates: [\"a {} one\"]\n"
         "model:\n  type: " + type + "\n"
         "  image: {patch_size: 3, width: 16, depth: 1, heads: 2}\n"
         "  text: {context: 24, width: 16, depth: 1, heads: 2}\n"
         "  embed_dim: 8\n  zero_shot_templates: [\"a {} one\"]\n"
         "loss: {type: contrastive}\n"
         "optim: {type: adamw, lr: 1.0e-3}\n"
         "train: {steps: 4, batch_size: 16}\n"
         // Batches of 7 do not divide the 30 eval images: whole-set recall differs from in-batch.
         "eval: {batch_size: 7, metrics: [i2t_r1, i2t_r5, t2i_r1, t2i_r10, linear_probe_accuracy, zero_shot_accuracy]}\n"
         "log: {every: 2}\n";
}

std::string string_attribute(hid_t object, const char* name) {
  std::vector<std::string> v;
  data::h5::Handle attr(H5Aopen(object, name, H5P_DEFAULT));
  if (!attr.valid() || !data::h5::read_strings_attribute(attr.get(), v) || v.size() != 1) return "<missing " + std::string(name) + ">";
  return v[0];
}

int64_t int_attribute(hid_t object, const char* name) {
  int64_t v = -1;
  data::h5::Handle attr(H5Aopen(object, name, H5P_DEFAULT));
  if (attr.valid()) H5Aread(attr.get(), H5T_NATIVE_INT64, &v);
  return v;
}

// The value of "key": NUMBER in a flat JSON line.
double json_number(const std::string& text, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex("\"" + key + "\": ([-0-9.eE+]+)"))) return NAN;
  return std::stod(m[1].str());
}

// The test set's images as the recipe normalises them: (pixel / 255 - 0.4) / 0.3, [N, 1, 6, 6].
Tensor normalised_images(const std::string& path) {
  const auto set = data::Dataset::open(path);
  std::vector<uint8_t> pixels(size_t(set->size() * set->image_bytes()));
  set->read_range(0, set->size(), pixels.data());
  std::vector<float> x;
  for (uint8_t p : pixels) x.push_back((float(p) / 255.0f - 0.4f) / 0.3f);
  return Tensor::from_vector(x, {set->size(), 1, 6, 6});
}

}  // namespace

BOOST_AUTO_TEST_SUITE(clip_embeddings_cli)

BOOST_AUTO_TEST_CASE(tokenize_probe_and_whole_set_metrics) {
  ScratchDir dir("clip_embeddings");
  write_tiny_dataset(dir / "train.h5", 48, 1);
  write_tiny_dataset(dir / "test.h5", 30, 2);
  write_file(dir / "clip.yaml", recipe(dir.path.string(), "clip"));
  const RunResult train = run_tessera("train clip.yaml --run-dir run", dir.path.string());
  BOOST_TEST_REQUIRE(train.exit_code == 0, train.output);

  // tokenize: unit image embeddings [30, 8], labels and class names, attributes.
  const RunResult tok = run_tessera("tokenize run/last.h5 test.h5 emb.h5 --batch 4", dir.path.string());
  BOOST_TEST_REQUIRE(tok.exit_code == 0, tok.output);
  BOOST_TEST(tok.output.find("embeddings float32 [30, 8]") != std::string::npos, tok.output);
  std::vector<hsize_t> dims;
  const std::vector<float> written = read_dataset<float>(dir / "emb.h5", "embeddings", dims);
  BOOST_TEST(dims == (std::vector<hsize_t>{30, 8}), tt::per_element());
  const std::vector<int64_t> labels = read_dataset<int64_t>(dir / "emb.h5", "labels", dims);
  BOOST_TEST(labels == data::Dataset::open(dir / "test.h5")->labels(), tt::per_element());
  {
    data::h5::Handle file(H5Fopen((dir / "emb.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    BOOST_TEST(string_attribute(file.get(), "checkpoint") == "run/last.h5");
    BOOST_TEST(string_attribute(file.get(), "model") == "clip");
    BOOST_TEST(string_attribute(file.get(), "source") == "test.h5");
    BOOST_TEST(int_attribute(file.get(), "step") == 4);
    BOOST_TEST(int_attribute(file.get(), "embed_dim") == 8);
    data::h5::Handle ld(H5Dopen2(file.get(), "labels", H5P_DEFAULT));
    data::h5::Handle names(H5Aopen(ld.get(), "class_names", H5P_DEFAULT));
    std::vector<std::string> class_names;
    BOOST_TEST(data::h5::read_strings_attribute(names.get(), class_names));
    BOOST_TEST(class_names == (std::vector<std::string>{"dark", "mid", "bright"}), tt::per_element());
  }

  // The same numbers as the model's own encode_image of the same images, L2-normalised.
  const train::TrainedModel loaded = train::TrainedModel::load(dir / "run/last.h5");
  auto* model = dynamic_cast<train::ClipModel*>(&loaded.module());
  BOOST_TEST_REQUIRE(model != nullptr);
  NoGradGuard no_grad;
  const Tensor images = l2_normalize_rows(model->encode_image(normalised_images(dir / "test.h5")));
  const std::vector<float> want = images.contiguous().to_vector<float>();
  BOOST_TEST_REQUIRE(want.size() == written.size());
  double worst = 0, norm0 = 0;
  for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, double(std::fabs(want[i] - written[i])));
  for (size_t i = 0; i < 8; ++i) norm0 += double(written[i]) * written[i];
  BOOST_TEST(worst < 1e-6, "largest difference " << worst);
  BOOST_TEST(std::sqrt(norm0) == 1.0, tt::tolerance(1e-6));

  // eval: recall over all 30 pairs (by class), and the probe on the even/odd split, as the library
  // computes them from the same embeddings.
  const RunResult eval = run_tessera("eval run/last.h5 --json", dir.path.string());
  BOOST_TEST_REQUIRE(eval.exit_code == 0, eval.output);
  std::vector<std::string> captions;
  const std::vector<std::string> names{"dark", "mid", "bright"};
  for (int64_t y : labels) captions.push_back("a " + names[size_t(y)] + " one");
  const Tensor texts = model->embed_texts(captions);
  const Tensor y = Tensor::from_vector(labels, {30});
  const nn::RecallAtK r = nn::retrieval_recall(images, texts, {1, 5, 10}, y);
  BOOST_TEST(json_number(eval.output, "i2t_r1") == r.image_to_text[0], tt::tolerance(1e-12));
  BOOST_TEST(json_number(eval.output, "i2t_r5") == r.image_to_text[1], tt::tolerance(1e-12));
  BOOST_TEST(json_number(eval.output, "t2i_r1") == r.text_to_image[0], tt::tolerance(1e-12));
  BOOST_TEST(json_number(eval.output, "t2i_r10") == r.text_to_image[2], tt::tolerance(1e-12));
  std::vector<int64_t> even, odd, y_even, y_odd;
  for (int64_t i = 0; i < 30; ++i) (i % 2 ? odd : even).push_back(i), (i % 2 ? y_odd : y_even).push_back(labels[size_t(i)]);
  auto rows = [&](const std::vector<int64_t>& v) { return index_select(images, 0, Tensor::from_vector(v, {int64_t(v.size())})); };
  auto vec = [](const std::vector<int64_t>& v) { return Tensor::from_vector(v, {int64_t(v.size())}); };
  const double probe = nn::linear_probe(rows(even), vec(y_even), rows(odd), vec(y_odd), 3).test_accuracy;
  // Embeddings from batches of 7 and of 30 may differ in the last bits: allow one image of 15.
  BOOST_TEST(std::fabs(json_number(eval.output, "linear_probe_accuracy") - probe) <= 1.0 / 15 + 1e-9, eval.output);

  // probe: train and test accuracy on the recipe's sets, as a table and as JSON.
  const RunResult p = run_tessera("probe run/last.h5 --json", dir.path.string());
  BOOST_TEST_REQUIRE(p.exit_code == 0, p.output);
  BOOST_TEST(json_number(p.output, "train_images") == 48);
  BOOST_TEST(json_number(p.output, "test_images") == 30);
  const double train_acc = json_number(p.output, "train_accuracy"), test_acc = json_number(p.output, "test_accuracy");
  BOOST_TEST((train_acc >= 0 && train_acc <= 1), p.output);
  BOOST_TEST((test_acc >= 0 && test_acc <= 1), p.output);
  // Embeddings files from tokenize (same batches as probe's own pass) give the very same probe.
  BOOST_TEST_REQUIRE(run_tessera("tokenize run/last.h5 train.h5 train_emb.h5", dir.path.string()).exit_code == 0);
  BOOST_TEST_REQUIRE(run_tessera("tokenize run/last.h5 test.h5 test_emb.h5", dir.path.string()).exit_code == 0);
  const RunResult from_files = run_tessera("probe run/last.h5 --train train_emb.h5 --test test_emb.h5 --json", dir.path.string());
  BOOST_TEST_REQUIRE(from_files.exit_code == 0, from_files.output);
  BOOST_TEST(json_number(from_files.output, "test_accuracy") == test_acc, from_files.output << p.output);
  BOOST_TEST(json_number(from_files.output, "loss") == json_number(p.output, "loss"), from_files.output << p.output);
  BOOST_TEST(from_files.output.find("note:") == std::string::npos, from_files.output);
  const RunResult limited = run_tessera("probe run/last.h5 --train train_emb.h5 --train-limit 12 --json", dir.path.string());
  BOOST_TEST_REQUIRE(limited.exit_code == 0, limited.output);
  BOOST_TEST(json_number(limited.output, "train_images") == 12, limited.output);

  const RunResult search = run_tessera("probe run/last.h5 --weight-decay auto", dir.path.string());
  BOOST_TEST_REQUIRE(search.exit_code == 0, search.output);
  BOOST_TEST(search.output.find("chosen on every 5th training image: 0 (") != std::string::npos, search.output);

  const RunResult table = run_tessera("probe run/last.h5 --train-limit 20 --test test.h5 --weight-decay 0.01",
                                      dir.path.string());
  BOOST_TEST_REQUIRE(table.exit_code == 0, table.output);
  BOOST_TEST(table.output.find("(20 images)") != std::string::npos, table.output);
  BOOST_TEST(table.output.find("weight decay 0.01") != std::string::npos, table.output);
  BOOST_TEST(table.output.find("(converged)") != std::string::npos, table.output);
  BOOST_TEST(table.output.find("test_accuracy") != std::string::npos, table.output);
}

BOOST_AUTO_TEST_CASE(bad_input_is_named_and_outputs_are_not_damaged) {
  ScratchDir dir("clip_embeddings_bad");
  write_tiny_dataset(dir / "train.h5", 32, 3);
  write_tiny_dataset(dir / "test.h5", 16, 4);
  write_file(dir / "siglip.yaml", recipe(dir.path.string(), "siglip"));
  const RunResult train = run_tessera("train siglip.yaml --run-dir run", dir.path.string());
  BOOST_TEST_REQUIRE(train.exit_code == 0, train.output);
  const RunResult tok = run_tessera("tokenize run/last.h5 test.h5 emb.h5", dir.path.string());
  BOOST_TEST_REQUIRE(tok.exit_code == 0, tok.output);
  const std::string before = read_file(dir / "emb.h5");

  // Images of another size: refused, naming the file; the existing output stays as it was.
  {
    data::DatasetWriter w(dir / "big.h5", 9, 9, 1, {"dark", "mid", "bright"});
    const std::vector<uint8_t> pixels(81 * 2, 7);
    const std::vector<int64_t> y{0, 1};
    w.append(pixels.data(), 2, y.data());
    w.close();
  }
  const RunResult big = run_tessera("tokenize run/last.h5 big.h5 emb.h5", dir.path.string());
  BOOST_TEST(big.exit_code != 0);
  BOOST_TEST(big.output.find("big.h5 holds 1x9x9 images") != std::string::npos, big.output);
  BOOST_TEST(read_file(dir / "emb.h5") == before);
  BOOST_TEST(!std::filesystem::exists(dir / "emb.h5.tmp"));
  const RunResult same = run_tessera("tokenize run/last.h5 test.h5 test.h5", dir.path.string());
  BOOST_TEST(same.exit_code != 0);
  BOOST_TEST(same.output.find("is the input") != std::string::npos, same.output);
  const RunResult missing = run_tessera("tokenize run/last.h5 nothere.h5 out.h5", dir.path.string());
  BOOST_TEST(missing.exit_code != 0);
  BOOST_TEST(missing.output.find("nothere.h5") != std::string::npos, missing.output);

  // probe: unlabelled sets, classes named differently, bad numbers, unknown options, no checkpoint.
  {
    data::DatasetWriter w(dir / "unlabelled.h5", 6, 6, 1, {});
    const std::vector<uint8_t> pixels(36 * 3, 9);
    w.append(pixels.data(), 3, nullptr);
    w.close();
    data::DatasetWriter v(dir / "renamed.h5", 6, 6, 1, {"black", "grey", "white"});
    const std::vector<int64_t> y{0, 1, 2};
    v.append(pixels.data(), 3, y.data());
    v.close();
  }
  const RunResult unlabelled = run_tessera("probe run/last.h5 --test unlabelled.h5", dir.path.string());
  BOOST_TEST(unlabelled.exit_code != 0);
  BOOST_TEST(unlabelled.output.find("unlabelled.h5 has no labels") != std::string::npos, unlabelled.output);
  const RunResult renamed = run_tessera("probe run/last.h5 --train renamed.h5", dir.path.string());
  BOOST_TEST(renamed.exit_code != 0);
  BOOST_TEST(renamed.output.find("names its classes [black, grey, white]") != std::string::npos, renamed.output);
  const RunResult steps = run_tessera("probe run/last.h5 --steps 0", dir.path.string());
  BOOST_TEST(steps.exit_code != 0);
  BOOST_TEST(steps.output.find("--steps: expected an integer >= 1") != std::string::npos, steps.output);
  const RunResult wd = run_tessera("probe run/last.h5 --weight-decay lots", dir.path.string());
  BOOST_TEST(wd.exit_code != 0);
  BOOST_TEST(wd.output.find("--weight-decay: expected a number") != std::string::npos, wd.output);
  const RunResult option = run_tessera("probe run/last.h5 --epochs 3", dir.path.string());
  BOOST_TEST(option.exit_code != 0);
  BOOST_TEST(option.output.find("unknown option '--epochs'") != std::string::npos, option.output);
  const RunResult none = run_tessera("probe", dir.path.string());
  BOOST_TEST(none.exit_code != 0);
  BOOST_TEST(none.output.find("give a checkpoint") != std::string::npos, none.output);
  const RunResult help = run_tessera("--help", dir.path.string());
  BOOST_TEST(help.output.find("probe ") != std::string::npos, help.output);

  // A model without an image embedding: the message names the file and the kinds that work.
  write_file(dir / "mlp.yaml", "seed: 0\ndata:\n  train: " + dir.path.string() + "/train.h5\n  eval: " +
                                   dir.path.string() + "/test.h5\nmodel:\n  type: mlp\n  hidden: [4]\n"
                                   "train: {steps: 1, batch_size: 8}\n");
  const RunResult mlp = run_tessera("train mlp.yaml --run-dir mlp", dir.path.string());
  BOOST_TEST_REQUIRE(mlp.exit_code == 0, mlp.output);
  const RunResult not_dual = run_tessera("probe mlp/last.h5", dir.path.string());
  BOOST_TEST(not_dual.exit_code != 0);
  BOOST_TEST(not_dual.output.find("mlp/last.h5 holds a 'mlp' model") != std::string::npos, not_dual.output);
}

BOOST_AUTO_TEST_CASE(probe_reads_a_vit_pooled_embedding) {
  ScratchDir dir("vit_probe");
  write_tiny_dataset(dir / "train.h5", 36, 5);
  write_tiny_dataset(dir / "test.h5", 18, 6);
  write_file(dir / "vit.yaml", "seed: 3\ndata:\n  train: " + dir.path.string() + "/train.h5\n  eval: " +
                                   dir.path.string() + "/test.h5\n"
                                   "model:\n  type: vit\n  patch_size: 2\n  width: 8\n  depth: 1\n  heads: 2\n"
                                   "train: {steps: 2, batch_size: 8}\n");
  const RunResult train = run_tessera("train vit.yaml --run-dir run", dir.path.string());
  BOOST_TEST_REQUIRE(train.exit_code == 0, train.output);
  const RunResult p = run_tessera("probe run/last.h5 --steps 200", dir.path.string());
  BOOST_TEST_REQUIRE(p.exit_code == 0, p.output);
  BOOST_TEST(p.output.find("vit pooled embedding") != std::string::npos, p.output);
  BOOST_TEST(p.output.find("8-d") != std::string::npos, p.output);
  // The tiny set's classes differ in brightness: even an almost untrained ViT separates them.
  BOOST_TEST(json_number(run_tessera("probe run/last.h5 --json", dir.path.string()).output, "test_accuracy") > 0.6);
}

BOOST_AUTO_TEST_SUITE_END()
