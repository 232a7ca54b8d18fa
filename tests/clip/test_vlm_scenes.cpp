// The vision-language model through the `tessera` command, on a tiny scene set: stage 1 (SigLIP)
// then stage 2 (vlm) from its checkpoint, frozen and trained; the loss falls; `eval` reports every
// metric; its detection parse failures match what `generate` reads from the same prompts; the
// frozen tower keeps stage 1's weights exactly and the trained one moves; and bad set-ups are
// refused with messages that name what is wrong.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <map>

#include "tests/support/cli_helpers.h"
#include "train/checkpoint.h"

using namespace tessera;
using namespace tessera::testing;

namespace {

void make_scenes(const ScratchDir& dir) {
  std::filesystem::create_directories(dir / "items");
  write_tiny_dataset(dir / "items/train.h5", 60, 1);
  write_tiny_dataset(dir / "items/test.h5", 30, 2);
  const RunResult r = run_tessera(
      "data import scenes --from items --out scenes --size 24 --objects 1-3 --scale 4-8 --train 64 --test 24",
      dir.path.string());
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
}

const char* kData = "data:\n  train: scenes/train.h5\n  eval: scenes/test.h5\n  mean: [0.1]\n  std: [0.2]\n  hflip: true\n";

std::string stage1_recipe() {
  return std::string("seed: 0\nthreads: 2\n") + kData +
         "model:\n  type: siglip\n  image: {patch_size: 6, width: 16, depth: 1, heads: 2, pooling: avg}\n"
         "  text: {context: 96, width: 16, depth: 1, heads: 2}\n  embed_dim: 8\n"
         "loss: {type: contrastive}\noptim: {type: adamw, lr: 1.0e-3}\ntrain: {steps: 3, batch_size: 16}\n"
         "eval: {batch_size: 8, metrics: [loss]}\nlog: {every: 1}\n";
}

std::string stage2_recipe(const std::string& extra_model, const std::string& extra_optim = "", int steps = 40) {
  return std::string("seed: 0\nthreads: 2\n") + kData +
         "model:\n  type: vlm\n  image: {patch_size: 6, width: 16, depth: 1, heads: 2}\n"
         "  lm: {width: 32, depth: 1, heads: 2}\n  text_context: 128\n  loc_bins: 24\n" + extra_model +
         "loss: {type: prefix_lm}\n"
         "optim: {type: adamw, lr: 3.0e-3" + extra_optim + "}\n"
         "schedule: {type: cosine, warmup_steps: " + std::to_string(std::min(steps, 5)) + "}\n"
         "train: {steps: " + std::to_string(steps) + ", batch_size: 16}\n"
         "eval: {batch_size: 8, metrics: [caption_cider, caption_bleu4, vqa_accuracy, vqa_accuracy_count, "
         "vqa_accuracy_existence, vqa_accuracy_place, vqa_accuracy_size, count_accuracy, detection_map50, "
         "detection_map, detection_parse_failures, loss]}\n"
         "log: {every: 1}\n";
}

std::map<std::string, Tensor> visual_weights(const std::string& checkpoint) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : train::load_checkpoint(checkpoint).params)
    if (name.rfind("visual.", 0) == 0) out[name] = t;
  return out;
}

double max_difference(const Tensor& a, const Tensor& b) {
  const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::abs(va[i] - vb[i]));
  return m;
}

double mean_of(const std::vector<double>& v, size_t from, size_t to) {
  double s = 0;
  for (size_t i = from; i < to; ++i) s += v[i];
  return s / double(to - from);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(vlm_scenes)

BOOST_AUTO_TEST_CASE(two_stages_train_evaluate_and_generate) {
  ScratchDir dir("vlm_scenes");
  make_scenes(dir);
  write_file(dir / "stage1.yaml", stage1_recipe());
  const RunResult s1 = run_tessera("train stage1.yaml --run-dir stage1", dir.path.string());
  BOOST_TEST_REQUIRE(s1.exit_code == 0, s1.output);

  write_file(dir / "frozen.yaml", stage2_recipe("  image_encoder: {from: stage1/last.h5, freeze: true}\n"));
  const RunResult s2 = run_tessera("train frozen.yaml --run-dir frozen", dir.path.string());
  BOOST_TEST_REQUIRE(s2.exit_code == 0, s2.output);
  // The reports: stage 1 a dual encoder's (captions, no labels), stage 2 a VLM's with its generations.
  for (const auto& [run, section] : {std::pair<std::string, std::string>{"stage1", "similarity"}, {"stage1", "attention"},
                                     {"frozen", "attention"}, {"frozen", "generations"}}) {
    const std::string html = read_file(dir / (run + "/report.html"));
    BOOST_TEST(html.find("<section id=\"" + section + "\">") != std::string::npos, run << " " << section);
    BOOST_TEST(html.find("could not be made") == std::string::npos, run);
  }
  BOOST_TEST(std::filesystem::exists(dir / "frozen/samples/detections_last.png"));
  // It learns: the last steps' loss well below the first steps'.
  const std::vector<double> loss = train_log_values(dir / "frozen/metrics.jsonl", "loss");
  BOOST_TEST_REQUIRE(loss.size() == 40u);
  BOOST_TEST(mean_of(loss, 35, 40) < 0.6 * mean_of(loss, 0, 5), "loss " << loss.front() << " -> " << loss.back());
  // The frozen tower is stage 1's, bit for bit; the projector left zero.
  const auto before = visual_weights(dir / "stage1/last.h5"), after = visual_weights(dir / "frozen/last.h5");
  BOOST_TEST_REQUIRE(before.size() == after.size());
  BOOST_TEST_REQUIRE(!before.empty());
  for (const auto& [name, t] : before) BOOST_TEST(max_difference(t, after.at(name)) == 0.0, name);
  const Tensor projector = train::load_checkpoint(dir / "frozen/last.h5").params.at("projector.weight");
  BOOST_TEST(max_difference(projector, Tensor::zeros(projector.shape())) > 0.0);

  const RunResult eval = run_tessera("eval frozen/last.h5 --json", dir.path.string());
  BOOST_TEST_REQUIRE(eval.exit_code == 0, eval.output);
  const auto reported = flat_json_numbers(eval.output);
  for (const char* key : {"caption_cider", "caption_bleu4", "vqa_accuracy", "vqa_accuracy_count", "vqa_accuracy_existence",
                          "vqa_accuracy_place", "vqa_accuracy_size", "count_accuracy", "detection_map50", "detection_map",
                          "detection_parse_failures", "loss"}) {
    BOOST_TEST_REQUIRE(reported.count(key) == 1u, "eval --json lacks " << key << ": " << eval.output);
    BOOST_TEST(std::isfinite(reported.at(key)), key);
  }
  for (const char* key : {"vqa_accuracy", "count_accuracy", "detection_map50", "detection_map"})
    BOOST_TEST((reported.at(key) >= 0 && reported.at(key) <= 1), key << " = " << reported.at(key));

  // generate with the evaluation's detect prompts reads as many malformed segments as eval counted.
  const RunResult gen = run_tessera(
      "generate frozen/last.h5 scenes/test.h5 --prompt 'detect {objects}' --count 24 --out det.jsonl --png det.png",
      dir.path.string());
  BOOST_TEST_REQUIRE(gen.exit_code == 0, gen.output);
  int64_t malformed = 0, lines = 0;
  std::istringstream in(read_file(dir / "det.jsonl"));
  for (std::string line; std::getline(in, line); ++lines) {
    const auto at = line.find("\"malformed_segments\": ");
    BOOST_TEST_REQUIRE(at != std::string::npos, line);
    malformed += std::stoll(line.substr(at + 22));
  }
  BOOST_TEST(lines == 24);
  BOOST_TEST(double(malformed) == reported.at("detection_parse_failures"));
  BOOST_TEST(std::filesystem::file_size(dir / "det.png") > 100u);
  const RunResult caption = run_tessera("generate frozen/last.h5 scenes/test.h5 --prompt caption --beam 2 --index 3",
                                        dir.path.string());
  BOOST_TEST_REQUIRE(caption.exit_code == 0, caption.output);
  BOOST_TEST(caption.output.find("image 3: caption -> ") != std::string::npos, caption.output);

  // Trained end to end (PaliGemma) with the tower at its own rate: the tower moves.
  write_file(dir / "trained.yaml", stage2_recipe("  image_encoder: {from: stage1/last.h5, freeze: false}\n",
                                                 ", lr_scales: [visual.=0.1]", 3));
  const RunResult t = run_tessera("train trained.yaml --run-dir trained", dir.path.string());
  BOOST_TEST_REQUIRE(t.exit_code == 0, t.output);
  const auto moved = visual_weights(dir / "trained/last.h5");
  double change = 0;
  for (const auto& [name, w] : before) change = std::max(change, max_difference(w, moved.at(name)));
  BOOST_TEST(change > 0.0);
}

// Issue 18's fusions through the command. LLaMA 3.2's route: a text-only LM (fusion none) trained
// on the scenes' text, then a cross-attention model that starts from it with the LM frozen and
// trains only the image side's adapters; the LM's weights come out bit for bit as they went in,
// and the gates open. LLaMA-VID's dual tokens from the same stage 1. eval and generate work on all.
BOOST_AUTO_TEST_CASE(text_only_lm_cross_attention_adapters_and_dual_tokens) {
  ScratchDir dir("vlm_cross_attention");
  make_scenes(dir);
  write_file(dir / "stage1.yaml", stage1_recipe());
  BOOST_TEST_REQUIRE(run_tessera("train stage1.yaml --run-dir stage1", dir.path.string()).exit_code == 0);
  write_file(dir / "text.yaml", stage2_recipe("  fusion: none\n", "", 30));
  const RunResult text = run_tessera("train text.yaml --run-dir text", dir.path.string());
  BOOST_TEST_REQUIRE(text.exit_code == 0, text.output);
  const std::vector<double> text_loss = train_log_values(dir / "text/metrics.jsonl", "loss");
  BOOST_TEST_REQUIRE(text_loss.size() == 30u);
  BOOST_TEST(mean_of(text_loss, 25, 30) < 0.7 * mean_of(text_loss, 0, 5));
  const auto text_params = train::load_checkpoint(dir / "text/last.h5").params;
  BOOST_TEST(text_params.count("visual.pos_embed") == 0u);
  BOOST_TEST(text_params.count("projector.weight") == 0u);

  std::string cross = stage2_recipe("  fusion: cross_attention\n  image_encoder: {from: stage1/last.h5, freeze: true}\n",
                                    "", 20);
  const std::string lm = "lm: {width: 32, depth: 1, heads: 2}";
  cross.replace(cross.find(lm), lm.size(), "lm: {width: 32, depth: 1, heads: 2, from: text/last.h5, freeze: true}");
  write_file(dir / "cross.yaml", cross);
  const RunResult x = run_tessera("train cross.yaml --run-dir cross", dir.path.string());
  BOOST_TEST_REQUIRE(x.exit_code == 0, x.output);
  const auto after = train::load_checkpoint(dir / "cross/last.h5").params;
  for (const auto& [name, t] : text_params) {
    BOOST_TEST_REQUIRE(after.count(name) == 1u, name);
    BOOST_TEST(max_difference(t, after.at(name)) == 0.0, name);
  }
  BOOST_TEST(std::abs(after.at("cross_blocks.0.gate_attn").item()) > 0.0);
  BOOST_TEST(std::abs(after.at("cross_blocks.0.gate_mlp").item()) > 0.0);
  BOOST_TEST(max_difference(after.at("visual.pos_embed"), visual_weights(dir / "stage1/last.h5").at("visual.pos_embed")) == 0.0);

  write_file(dir / "dual.yaml", stage2_recipe("  fusion: dual_token\n  content_grid: 2\n"
                                             "  image_encoder: {from: stage1/last.h5, freeze: true}\n", "", 10));
  const RunResult d = run_tessera("train dual.yaml --run-dir dual", dir.path.string());
  BOOST_TEST_REQUIRE(d.exit_code == 0, d.output);
  const auto dual = train::load_checkpoint(dir / "dual/last.h5").params;
  BOOST_TEST(dual.at("positional_embedding").size(0) == 5 + 128);  // a context and four content tokens
  BOOST_TEST(dual.count("projector.weight") == 0u);
  BOOST_TEST(max_difference(dual.at("dual_token.content_projector.weight"),
                            Tensor::zeros(dual.at("dual_token.content_projector.weight").shape())) > 0.0);

  for (const char* run : {"text", "cross", "dual"}) {
    const std::string html = read_file(dir / (std::string(run) + "/report.html"));
    BOOST_TEST(html.find("<section id=\"generations\">") != std::string::npos, run);
    BOOST_TEST(html.find("could not be made") == std::string::npos, run << ": " << html.substr(0, 3000));
    const RunResult eval = run_tessera(std::string("eval ") + run + "/last.h5 --json", dir.path.string());
    BOOST_TEST_REQUIRE(eval.exit_code == 0, eval.output);
    const auto reported = flat_json_numbers(eval.output);
    for (const char* key : {"caption_cider", "vqa_accuracy", "count_accuracy", "detection_map50", "loss"}) {
      BOOST_TEST_REQUIRE(reported.count(key) == 1u, run << ": eval --json lacks " << key << ": " << eval.output);
      BOOST_TEST(std::isfinite(reported.at(key)), run << " " << key);
    }
    const RunResult caption = run_tessera(std::string("generate ") + run + "/last.h5 scenes/test.h5 --prompt caption "
                                          "--beam 2 --index 3", dir.path.string());
    BOOST_TEST_REQUIRE(caption.exit_code == 0, caption.output);
    BOOST_TEST(caption.output.find("image 3: caption -> ") != std::string::npos, caption.output);
  }

  // What cannot work is refused by name.
  auto refused = [&](const std::string& name, const std::string& recipe, const std::string& message) {
    write_file(dir / (name + ".yaml"), recipe);
    const RunResult r = run_tessera("train " + name + ".yaml --run-dir " + name, dir.path.string());
    BOOST_TEST(r.exit_code != 0, name);
    BOOST_TEST(r.output.find(message) != std::string::npos, name << ": " << r.output);
  };
  std::string frozen_prefix = stage2_recipe("", "", 2);
  frozen_prefix.replace(frozen_prefix.find(lm), lm.size(), "lm: {width: 32, depth: 1, heads: 2, freeze: true}");
  refused("frozen_prefix", frozen_prefix, "model.lm.freeze needs model.fusion cross_attention");
  refused("blind_tower", stage2_recipe("  fusion: none\n  image_encoder: {from: stage1/last.h5}\n", "", 2),
          "model.fusion none reads no image, but model.image_encoder.from is set");
  refused("every", stage2_recipe("  fusion: cross_attention\n  cross_attention_every: 2\n", "", 2),
          "model.cross_attention_every 2 is more than model.lm.depth 1");
  refused("grid", stage2_recipe("  fusion: dual_token\n  content_grid: 3\n", "", 2),
          "model.content_grid 3 does not divide the image's 4x4 token grid");
  std::string from_prefix = stage2_recipe("", "", 2);  // a prefix model's positions include its image tokens
  from_prefix.replace(from_prefix.find(lm), lm.size(), "lm: {width: 32, depth: 1, heads: 2, from: text/last.h5}");
  refused("from_prefix", from_prefix, "text/last.h5 has positional_embedding of shape");
  std::string from_siglip = cross;
  from_siglip.replace(from_siglip.find("from: text/last.h5"), 18, "from: stage1/last.h5");
  refused("from_siglip", from_siglip, "stage1/last.h5 holds a 'siglip' model; it needs a vlm checkpoint");
}

// Clips of 3 frames (data import scenes --frames 3, model.frames: 3) through every fusion: the
// blind LM learns the clips' text, each image-reading fusion trains, evaluates (with the clip
// question types), generates a frame's detection and reports; mismatches are refused by name.
BOOST_AUTO_TEST_CASE(clips_of_frames_through_every_fusion) {
  ScratchDir dir("vlm_clips");
  std::filesystem::create_directories(dir / "items");
  write_tiny_dataset(dir / "items/train.h5", 60, 1);
  write_tiny_dataset(dir / "items/test.h5", 30, 2);
  const RunResult made = run_tessera("data import scenes --from items --out clips --size 24 --objects 1-3 --scale 4-8 "
                                     "--frames 3 --train 48 --test 12", dir.path.string());
  BOOST_TEST_REQUIRE(made.exit_code == 0, made.output);
  auto clip_recipe = [](const std::string& extra_model, int steps) {
    std::string r = stage2_recipe(extra_model, "", steps);
    for (size_t at; (at = r.find("scenes/")) != std::string::npos;) r.replace(at, 7, "clips/");
    const std::string metrics = "detection_parse_failures, loss]";
    r.replace(r.find(metrics), metrics.size(), "detection_parse_failures, vqa_accuracy_frame, vqa_accuracy_total, loss]");
    return r;
  };
  write_file(dir / "text.yaml", clip_recipe("  frames: 3\n  fusion: none\n", 30));
  const RunResult text = run_tessera("train text.yaml --run-dir text", dir.path.string());
  BOOST_TEST_REQUIRE(text.exit_code == 0, text.output);
  const std::vector<double> text_loss = train_log_values(dir / "text/metrics.jsonl", "loss");
  BOOST_TEST_REQUIRE(text_loss.size() == 30u);
  BOOST_TEST(mean_of(text_loss, 25, 30) < 0.7 * mean_of(text_loss, 0, 5));

  struct Fusion {
    const char* name;
    std::string model;
    int64_t image_positions;  // per sample: 3 frames of 16 patches, or of 2 dual tokens
  };
  const std::vector<Fusion> fusions{
      {"prefix", "  frames: 3\n", 3 * 16},
      {"dual", "  frames: 3\n  fusion: dual_token\n", 3 * 2},
      {"cross", "  frames: 3\n  fusion: cross_attention\n", 0}};
  for (const Fusion& f : fusions) {
    write_file(dir / (std::string(f.name) + ".yaml"), clip_recipe(f.model, 4));
    const RunResult r = run_tessera(std::string("train ") + f.name + ".yaml --run-dir " + f.name, dir.path.string());
    BOOST_TEST_REQUIRE(r.exit_code == 0, f.name << ": " << r.output);
    const auto params = train::load_checkpoint(dir / (std::string(f.name) + "/last.h5")).params;
    BOOST_TEST(params.at("frame_embedding").shape() == (Shape{3, 32}), f.name);
    BOOST_TEST(params.at("positional_embedding").size(0) == f.image_positions + 128, f.name);

    const RunResult eval = run_tessera(std::string("eval ") + f.name + "/last.h5 --json", dir.path.string());
    BOOST_TEST_REQUIRE(eval.exit_code == 0, eval.output);
    const auto reported = flat_json_numbers(eval.output);
    for (const char* key : {"vqa_accuracy", "vqa_accuracy_frame", "vqa_accuracy_total", "count_accuracy", "detection_map50"}) {
      BOOST_TEST_REQUIRE(reported.count(key) == 1u, f.name << ": eval --json lacks " << key << ": " << eval.output);
      BOOST_TEST(std::isfinite(reported.at(key)), f.name << " " << key);
    }
    const RunResult g = run_tessera(std::string("generate ") + f.name +
                                        "/last.h5 clips/test.h5 --prompt 'detect in frame 2: {objects}' --index 1 "
                                        "--max-new-tokens 8",
                                    dir.path.string());
    BOOST_TEST_REQUIRE(g.exit_code == 0, g.output);
    BOOST_TEST(g.output.find("image 1: detect in frame 2: ") != std::string::npos, g.output);
    const std::string html = read_file(dir / (std::string(f.name) + "/report.html"));
    BOOST_TEST(html.find("<section id=\"generations\">") != std::string::npos, f.name);
    BOOST_TEST(html.find("could not be made") == std::string::npos, f.name << ": " << html.substr(0, 3000));
  }

  // Clips reach only a model told how many frames a sample has, and the detection grid draws single scenes.
  auto refused = [&](const std::string& command, const std::string& message) {
    const RunResult r = run_tessera(command, dir.path.string());
    BOOST_TEST(r.exit_code != 0, command);
    BOOST_TEST(r.output.find(message) != std::string::npos, command << ": " << r.output);
  };
  write_file(dir / "two.yaml", clip_recipe("  frames: 2\n", 2));
  refused("train two.yaml --run-dir two", "model.frames is 2 but the data set has 3 images per sample; set model.frames: 3");
  write_file(dir / "single.yaml", clip_recipe("", 2));
  refused("train single.yaml --run-dir single", "model.frames is 1 but the data set has 3 images per sample");
  std::string siglip = stage1_recipe();
  for (size_t at; (at = siglip.find("scenes/")) != std::string::npos;) siglip.replace(at, 7, "clips/");
  write_file(dir / "siglip.yaml", siglip);
  refused("train siglip.yaml --run-dir siglip", "clips/train.h5 holds clips of 3 frames per sample, but model.type "
                                                 "siglip reads single images");
  refused("generate prefix/last.h5 clips/test.h5 --prompt 'detect {objects}' --png d.png",
          "--png draws single scenes, but clips/test.h5 holds clips of 3 frames");
}

BOOST_AUTO_TEST_CASE(bad_setups_are_refused_by_name) {
  ScratchDir dir("vlm_refusals");
  make_scenes(dir);
  write_file(dir / "stage1.yaml", stage1_recipe());
  BOOST_TEST_REQUIRE(run_tessera("train stage1.yaml --run-dir stage1", dir.path.string()).exit_code == 0);
  // A tower that is not the checkpoint's.
  std::string wide = stage2_recipe("  image_encoder: {from: stage1/last.h5}\n", "", 2);
  wide.replace(wide.find("width: 16"), 9, "width: 24");
  write_file(dir / "wide.yaml", wide);
  const RunResult w = run_tessera("train wide.yaml --run-dir wide", dir.path.string());
  BOOST_TEST(w.exit_code != 0);
  BOOST_TEST(w.output.find("stage1/last.h5 has visual.") != std::string::npos, w.output);
  // A checkpoint that is missing.
  write_file(dir / "missing.yaml", stage2_recipe("  image_encoder: {from: nowhere.h5}\n", "", 2));
  const RunResult m = run_tessera("train missing.yaml --run-dir missing", dir.path.string());
  BOOST_TEST(m.exit_code != 0);
  BOOST_TEST(m.output.find("nowhere.h5") != std::string::npos, m.output);
  // A data set without objects.
  std::string plain = stage2_recipe("", "", 2);
  plain.replace(plain.find("scenes/train.h5"), 15, "items/train.h5");
  write_file(dir / "plain.yaml", plain);
  const RunResult p = run_tessera("train plain.yaml --run-dir plain", dir.path.string());
  BOOST_TEST(p.exit_code != 0);
  BOOST_TEST(p.output.find("scene data sets") != std::string::npos, p.output);
  // generate on a model that cannot.
  const RunResult g = run_tessera("generate stage1/last.h5 scenes/test.h5 --prompt caption", dir.path.string());
  BOOST_TEST(g.exit_code != 0);
  BOOST_TEST(g.output.find("cannot generate text") != std::string::npos, g.output);
}

// Data-parallel (docs/SCALING.md): stage 2 trained on 2 processes ends bitwise where one process
// cutting each batch in two ends, with the same evaluation; and `eval` shared out among 3
// processes — generated captions, answers and boxes, and a dual encoder's embeddings, handed
// round and merged in batch order — gives exactly the one-process figures.
BOOST_AUTO_TEST_CASE(data_parallel_training_and_shared_evaluation, *boost::unit_test::precondition(mpi_available)) {
  BOOST_REQUIRE_MESSAGE(mpi_missing().empty(), mpi_missing());
  ScratchDir dir("vlm_mpi");
  make_scenes(dir);
  std::string stage1 = stage1_recipe();
  stage1.replace(stage1.find("metrics: [loss]"), 15, "metrics: [i2t_r1, t2i_r5, swap_accuracy, loss]");
  write_file(dir / "stage1.yaml", stage1);
  BOOST_TEST_REQUIRE(run_tessera("train stage1.yaml --run-dir stage1", dir.path.string()).exit_code == 0);
  write_file(dir / "trained.yaml", stage2_recipe("  image_encoder: {from: stage1/last.h5, freeze: false}\n", "", 6));

  const RunResult one = run_tessera("train trained.yaml --run-dir one --threads 1 --set train.accumulation=2", dir.path.string());
  BOOST_TEST_REQUIRE(one.exit_code == 0, one.output);
  const RunResult two = run_tessera_mpi(2, "train trained.yaml --run-dir two --threads 1", dir.path.string());
  BOOST_TEST_REQUIRE(two.exit_code == 0, two.output);
  const train::Checkpoint a = train::load_checkpoint(dir / "one/last.h5"), b = train::load_checkpoint(dir / "two/last.h5");
  for (const auto& [name, t] : a.params) BOOST_TEST(t.to_vector<float>() == b.params.at(name).to_vector<float>(), name);

  for (const std::string checkpoint : {"one/last.h5", "stage1/last.h5"}) {
    const RunResult single = run_tessera("eval " + checkpoint + " --json --threads 1", dir.path.string());
    const RunResult shared = run_tessera_mpi(3, "eval " + checkpoint + " --json --threads 1", dir.path.string());
    BOOST_TEST_REQUIRE(single.exit_code == 0, single.output);
    BOOST_TEST_REQUIRE(shared.exit_code == 0, shared.output);
    const auto x = flat_json_numbers(single.output), y = flat_json_numbers(shared.output.substr(shared.output.rfind('{')));
    BOOST_TEST_REQUIRE(x.size() >= 4u, single.output);
    BOOST_TEST_REQUIRE(x.size() == y.size(), shared.output);
    for (const auto& [key, v] : x) {
      if (key == "loss") BOOST_TEST(v == y.at(key), boost::test_tools::tolerance(1e-12));  // sums in another order
      else BOOST_TEST(v == y.at(key), checkpoint << " " << key);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
