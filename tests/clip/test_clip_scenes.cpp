// Dual encoders on scene data sets through the `tessera` command: import scenes, train a tiny CLIP
// on their captions (with hflip), and check that `eval` reports swap_accuracy and caption-level
// retrieval exactly as computed here from the model's own embeddings; plus the refusals (crop
// augmentation on scenes, swap_accuracy without swapped captions).
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <map>

#include "autograd/engine.h"
#include "autograd/ops.h"
#include "nn/contrastive_metrics.h"
#include "nn/patch_targets.h"
#include "tests/support/cli_helpers.h"
#include "train/models/clip.h"
#include "train/trained_model.h"

using namespace tessera;
using namespace tessera::testing;
namespace tt = boost::test_tools;

namespace {

std::string scene_recipe(const std::string& dir, const std::string& type, const std::string& metrics) {
  return "seed: 0\nthreads: 2\n"
         "data:\n  train: " + dir + "/scenes/train.h5\n  eval: " + dir + "/scenes/test.h5\n"
         "  mean: [0.1]\n  std: [0.2]\n  hflip: true\n"
         "model:\n  type: " + type + "\n"
         "  image: {patch_size: 6, width: 16, depth: 1, heads: 2}\n"
         "  text: {context: 64, width: 16, depth: 1, heads: 2}\n"
         "  embed_dim: 8\n"
         "loss: {type: contrastive}\n"
         "optim: {type: adamw, lr: 1.0e-3}\n"
         "train: {steps: 4, batch_size: 16}\n"
         "eval: {batch_size: 7, metrics: [" + metrics + "]}\n"
         "log: {every: 2}\n";
}

// The scenes as the recipe normalises them: (pixel / 255 - 0.1) / 0.2, [N, 1, S, S].
Tensor normalised_images(const data::Dataset& set) {
  std::vector<uint8_t> pixels(size_t(set.size() * set.image_bytes()));
  set.read_range(0, set.size(), pixels.data());
  std::vector<float> x;
  for (uint8_t p : pixels) x.push_back((float(p) / 255.0f - 0.1f) / 0.2f);
  return Tensor::from_vector(x, {set.size(), 1, set.info().height, set.info().width});
}

// A tiny scene set made through the command, from tiny labelled items.
void make_scenes(const ScratchDir& dir) {
  std::filesystem::create_directories(dir / "items");
  write_tiny_dataset(dir / "items/train.h5", 60, 1);
  write_tiny_dataset(dir / "items/test.h5", 30, 2);
  const RunResult r = run_tessera(
      "data import scenes --from items --out scenes --size 24 --objects 1-3 --scale 4-8 --train 64 --test 40",
      dir.path.string());
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST(r.output.find("40 scenes") != std::string::npos, r.output);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(clip_scenes)

BOOST_AUTO_TEST_CASE(swap_accuracy_and_caption_retrieval_match_the_embeddings) {
  ScratchDir dir("clip_scenes");
  make_scenes(dir);
  write_file(dir / "clip.yaml", scene_recipe(dir.path.string(), "clip", "i2t_r1, i2t_r5, t2i_r1, swap_accuracy, loss"));
  const RunResult train = run_tessera("train clip.yaml --run-dir run", dir.path.string());
  BOOST_TEST_REQUIRE(train.exit_code == 0, train.output);
  const RunResult eval = run_tessera("eval run/last.h5 --json", dir.path.string());
  BOOST_TEST_REQUIRE(eval.exit_code == 0, eval.output);
  std::map<std::string, double> reported = flat_json_numbers(eval.output);
  for (const char* key : {"swap_accuracy", "i2t_r1", "i2t_r5", "t2i_r1"})
    BOOST_TEST_REQUIRE(reported.count(key) == 1u, "eval --json lacks " << key << ": " << eval.output);

  const auto test = data::Dataset::open(dir / "scenes/test.h5");
  const train::TrainedModel loaded = train::TrainedModel::load(dir / "run/last.h5");
  auto* model = dynamic_cast<train::ClipModel*>(&loaded.module());
  BOOST_TEST_REQUIRE(model != nullptr);
  NoGradGuard no_grad;
  const Tensor images = l2_normalize_rows(model->encode_image(normalised_images(*test)));
  std::vector<std::string> first, swapped;
  for (int64_t i = 0; i < test->size(); ++i) first.push_back(test->caption(i)), swapped.push_back(test->swapped_caption(i));
  const Tensor texts = l2_normalize_rows(model->embed_texts(first));

  // swap_accuracy: the true caption's cosine above the swapped one's, over the scenes that have one.
  int64_t wins = 0, pairs = 0;
  const std::vector<float> im = images.contiguous().to_vector<float>(), tx = texts.contiguous().to_vector<float>();
  const int64_t d = images.size(1);
  for (int64_t i = 0; i < test->size(); ++i) {
    if (swapped[size_t(i)].empty()) continue;
    BOOST_TEST(swapped[size_t(i)] != first[size_t(i)]);
    const std::vector<float> f = l2_normalize_rows(model->embed_texts({swapped[size_t(i)]})).to_vector<float>();
    double t = 0, s = 0;
    for (int64_t k = 0; k < d; ++k) t += double(im[size_t(i * d + k)]) * tx[size_t(i * d + k)], s += double(im[size_t(i * d + k)]) * f[size_t(k)];
    wins += t > s;
    ++pairs;
  }
  BOOST_TEST_REQUIRE(pairs > 5, "only " << pairs << " of 40 test scenes have a swapped caption");
  BOOST_TEST(reported["swap_accuracy"] == double(wins) / double(pairs), tt::tolerance(1e-9));

  // Retrieval: scenes whose first captions are the same text are one item.
  std::map<std::string, int64_t> ids;
  std::vector<int64_t> groups;
  for (const std::string& c : first) groups.push_back(ids.emplace(c, int64_t(ids.size())).first->second);
  BOOST_TEST_REQUIRE(ids.size() < first.size(), "the test scenes should repeat some captions");
  const nn::RecallAtK r = nn::retrieval_recall(images, texts, {1, 5, 10}, Tensor::from_vector(groups, {test->size()}));
  BOOST_TEST(reported["i2t_r1"] == r.image_to_text[0], tt::tolerance(1e-12));
  BOOST_TEST(reported["i2t_r5"] == r.image_to_text[1], tt::tolerance(1e-12));
  BOOST_TEST(reported["t2i_r1"] == r.text_to_image[0], tt::tolerance(1e-12));
}

// The patch heads (model.patch_head, with its centre head) through the command: a few steps teach
// them (their losses on the test scenes fall well below the untrained model's), and eval's patch
// accuracies are those of the trained model's own logits against labels made here from the test
// set's boxes.
BOOST_AUTO_TEST_CASE(patch_head_learns_and_eval_reports_its_accuracy) {
  ScratchDir dir("clip_scenes_patch_head");
  make_scenes(dir);
  const std::string metrics = "patch_class_accuracy, patch_background_accuracy, patch_centre_accuracy, "
                              "patch_centre_background_accuracy, patch_centre_count_accuracy, loss";
  write_file(dir / "siglip.yaml", scene_recipe(dir.path.string(), "siglip", metrics));
  const std::string head = " --set model.patch_head.classes=3 --set model.patch_head.weight=2 "
                           "--set model.patch_head.centre_weight=2 --set optim.lr=3.0e-3";
  const RunResult untrained = run_tessera("train siglip.yaml --run-dir start --set train.steps=1" + head, dir.path.string());
  BOOST_TEST_REQUIRE(untrained.exit_code == 0, untrained.output);
  const RunResult train = run_tessera("train siglip.yaml --run-dir run --set train.steps=40" + head, dir.path.string());
  BOOST_TEST_REQUIRE(train.exit_code == 0, train.output);
  BOOST_TEST(train.output.find("  patch_loss ") != std::string::npos, train.output);  // on the progress line
  BOOST_TEST(train.output.find("  centre_loss ") != std::string::npos, train.output);
  const RunResult eval = run_tessera("eval run/last.h5 --json", dir.path.string());
  BOOST_TEST_REQUIRE(eval.exit_code == 0, eval.output);
  std::map<std::string, double> reported = flat_json_numbers(eval.output);
  for (const char* key : {"patch_class_accuracy", "patch_background_accuracy", "patch_centre_accuracy",
                          "patch_centre_background_accuracy", "patch_centre_count_accuracy"})
    BOOST_TEST_REQUIRE(reported.count(key) == 1u, "eval --json lacks " << key << ": " << eval.output);

  // Labels from the file's boxes: the smallest box holding each 6-pixel patch's centre, else 3.
  const auto test = data::Dataset::open(dir / "scenes/test.h5");
  const int64_t n = test->size(), K = test->info().max_objects;
  std::vector<float> boxes(size_t(n * K * 4), 0);
  std::vector<int64_t> classes(size_t(n * K), -1);
  for (int64_t i = 0; i < n; ++i) {
    const data::ObjectsView o = test->objects(i);
    for (int64_t k = 0; k < o.count; ++k) {
      classes[size_t(i * K + k)] = o.classes[k];
      for (int j = 0; j < 4; ++j) boxes[size_t((i * K + k) * 4 + j)] = o.boxes[k * 4 + j];
    }
  }
  const Tensor targets = nn::patch_class_targets(Tensor::from_vector(boxes, {n, K, 4}),
                                                 Tensor::from_vector(classes, {n, K}), 24, 4, 3);
  const std::vector<int64_t> y = targets.to_vector<int64_t>();
  const Tensor centre_targets = nn::patch_centre_targets(Tensor::from_vector(boxes, {n, K, 4}),
                                                         Tensor::from_vector(classes, {n, K}), 24, 4, 3);

  NoGradGuard no_grad;
  const Tensor images = normalised_images(*test);
  struct HeadResult {
    double loss, centre_loss;
    std::vector<int64_t> predicted, centre_predicted;
  };
  auto patch_loss = [&](const std::string& checkpoint) {
    const train::TrainedModel loaded = train::TrainedModel::load(dir / checkpoint);
    auto* model = dynamic_cast<train::ClipModel*>(&loaded.module());
    BOOST_TEST_REQUIRE(model != nullptr);
    const auto out = model->encode_image_and_patches(images);
    return HeadResult{nn::DualEncoder::patch_class_loss(out.patch_logits, targets).item(),
                      nn::DualEncoder::patch_class_loss(out.centre_logits, centre_targets).item(),
                      argmax(out.patch_logits, 2).to_vector<int64_t>(), argmax(out.centre_logits, 2).to_vector<int64_t>()};
  };
  const HeadResult start = patch_loss("start/last.h5"), trained = patch_loss("run/last.h5");
  const std::vector<int64_t>& predicted = trained.predicted;
  BOOST_TEST_MESSAGE("patch loss on the test scenes: " << start.loss << " -> " << trained.loss << "; centre loss "
                                                       << start.centre_loss << " -> " << trained.centre_loss);
  BOOST_TEST(trained.loss < 0.7 * start.loss);
  BOOST_TEST(trained.centre_loss < 0.7 * start.centre_loss);

  int64_t object_hits = 0, objects = 0, background_hits = 0, background = 0;
  for (size_t p = 0; p < y.size(); ++p)
    (y[p] == 3 ? background_hits : object_hits) += predicted[p] == y[p], (y[p] == 3 ? background : objects) += 1;
  BOOST_TEST_REQUIRE(objects > 20);
  BOOST_TEST_REQUIRE(background > 20);
  BOOST_TEST(reported["patch_class_accuracy"] == double(object_hits) / double(objects), tt::tolerance(1e-12));
  BOOST_TEST(reported["patch_background_accuracy"] == double(background_hits) / double(background), tt::tolerance(1e-12));

  // The centre head: accuracy on the centre patches and off them, and exact counts per image and class held.
  const std::vector<int64_t> yc = centre_targets.to_vector<int64_t>();
  int64_t centre_hits = 0, centres = 0, off_hits = 0, off = 0, count_hits = 0, counts = 0;
  for (size_t p = 0; p < yc.size(); ++p)
    (yc[p] == 3 ? off_hits : centre_hits) += trained.centre_predicted[p] == yc[p], (yc[p] == 3 ? off : centres) += 1;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < 3; ++c) {
      const auto first = size_t(i * 16), last = first + 16;
      const auto held = std::count(yc.begin() + first, yc.begin() + last, c);
      if (held == 0) continue;
      count_hits += std::count(trained.centre_predicted.begin() + first, trained.centre_predicted.begin() + last, c) == held;
      ++counts;
    }
  BOOST_TEST_REQUIRE(centres > 20);
  BOOST_TEST(reported["patch_centre_accuracy"] == double(centre_hits) / double(centres), tt::tolerance(1e-12));
  BOOST_TEST(reported["patch_centre_background_accuracy"] == double(off_hits) / double(off), tt::tolerance(1e-12));
  BOOST_TEST(reported["patch_centre_count_accuracy"] == double(count_hits) / double(counts), tt::tolerance(1e-12));
  // A centre metric asked of a model without the centre head is refused by name.
  const RunResult no_centre = run_tessera("train siglip.yaml --run-dir no_centre --set train.steps=1 "
                                          "--set model.patch_head.classes=3", dir.path.string());
  BOOST_TEST(no_centre.exit_code != 0);
  BOOST_TEST(no_centre.output.find("patch_centre_accuracy needs the patch centre head (model.patch_head.centre_weight)") !=
                 std::string::npos,
             no_centre.output);

  // A head of the wrong size for the data set, and one on a data set without boxes.
  const RunResult wrong = run_tessera("train siglip.yaml --run-dir wrong --set model.patch_head.classes=4", dir.path.string());
  BOOST_TEST(wrong.exit_code != 0);
  BOOST_TEST(wrong.output.find("model.patch_head.classes is 4") != std::string::npos, wrong.output);
  BOOST_TEST(!std::filesystem::exists(dir / "wrong/last.h5"));
}

BOOST_AUTO_TEST_CASE(refusals_name_the_cause) {
  ScratchDir dir("clip_scenes_refusals");
  make_scenes(dir);
  write_file(dir / "crop.yaml", scene_recipe(dir.path.string(), "siglip", "swap_accuracy"));
  const RunResult crop = run_tessera("train crop.yaml --run-dir run --set data.crop_padding=2", dir.path.string());
  BOOST_TEST(crop.exit_code != 0);
  BOOST_TEST(crop.output.find("crop_padding") != std::string::npos, crop.output);
  BOOST_TEST(crop.output.find("hflip only") != std::string::npos, crop.output);

  // swap_accuracy on a set without swapped captions (labelled items with caption templates).
  write_file(dir / "plain.yaml",
             "seed: 0\nthreads: 2\ndata:\n  train: " + (dir / "items/train.h5") + "\n  eval: " + (dir / "items/test.h5") +
                 "\n  caption_templates: [\"a {} one\"]\n"
                 "model:\n  type: clip\n  image: {patch_size: 3, width: 16, depth: 1, heads: 2}\n"
                 "  text: {context: 24, width: 16, depth: 1, heads: 2}\n  embed_dim: 8\n"
                 "loss: {type: contrastive}\ntrain: {steps: 2, batch_size: 16}\neval: {metrics: [swap_accuracy]}\n");
  const RunResult plain = run_tessera("train plain.yaml --run-dir plain", dir.path.string());
  BOOST_TEST(plain.exit_code != 0);
  BOOST_TEST(plain.output.find("captions_swapped") != std::string::npos, plain.output);
  // The patch head on items without boxes.
  const RunResult boxless = run_tessera("train plain.yaml --run-dir boxless --set model.patch_head.classes=3 "
                                        "--set 'eval.metrics=[loss]'", dir.path.string());
  BOOST_TEST(boxless.exit_code != 0);
  BOOST_TEST(boxless.output.find("model.patch_head needs scene data") != std::string::npos, boxless.output);

  // The importer's mistakes: a range backwards, and items without labels.
  const RunResult range = run_tessera("data import scenes --from items --out bad --scale 9-4", dir.path.string());
  BOOST_TEST(range.exit_code != 0);
  BOOST_TEST(range.output.find("--scale 9-4") != std::string::npos, range.output);
  const RunResult missing = run_tessera("data import scenes --from nowhere --out bad", dir.path.string());
  BOOST_TEST(missing.exit_code != 0);
  BOOST_TEST(missing.output.find("nowhere/train.h5") != std::string::npos, missing.output);
  BOOST_TEST(!std::filesystem::exists(dir / "bad/train.h5"));
}

BOOST_AUTO_TEST_SUITE_END()
