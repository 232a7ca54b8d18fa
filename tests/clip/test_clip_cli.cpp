// CLIP/SigLIP through the `tessera` command as a user runs it: train a tiny dual encoder from a
// recipe, then `embed` a text and `classify` a data set zero-shot; and the messages bad input gets.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <regex>
#include <sstream>

#include "autograd/engine.h"
#include "autograd/ops/contrastive.h"
#include "nn/capabilities.h"
#include "tests/support/cli_helpers.h"
#include "tests/support/h5_files.h"
#include "train/trained_model.h"

using namespace tessera::testing;

namespace {

std::string tiny_recipe(const std::string& dir, const std::string& type, const std::string& extra_model,
                        const std::string& templates) {
  return "seed: 0\nthreads: 2\n"
         "data:\n  train: " + dir + "/train.h5\n  eval: " + dir + "/test.h5\n  caption_templates: " + templates + "\n"
         "model:\n  type: " + type + "\n"
         "  image: {patch_size: 3, width: 16, depth: 1, heads: 2}\n"
         "  text: {context: 24, width: 16, depth: 1, heads: 2}\n"
         "  embed_dim: 8\n  zero_shot_templates: [\"a {} one\", \"{}\"]\n" + extra_model +
         "loss: {type: contrastive}\n"
         "optim: {type: adamw, lr: 1.0e-3}\n"
         "schedule: {type: cosine, warmup_steps: 1}\n"
         "train: {steps: 4, batch_size: 16}\n"
         "eval: {batch_size: 24}\n"
         "log: {every: 2}\n";
}

// The numbers of the first "embedding": [...] in `text`.
std::vector<double> embedding_of(const std::string& text) {
  std::smatch m;
  std::vector<double> v;
  if (!std::regex_search(text, m, std::regex("\"embedding\": \\[([^\\]]*)\\]"))) return v;
  std::stringstream in(m[1].str());
  std::string item;
  while (std::getline(in, item, ',')) v.push_back(std::stod(item));
  return v;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(clip_cli)

BOOST_AUTO_TEST_CASE(train_embed_and_classify) {
  ScratchDir dir("clip_cli");
  write_tiny_dataset(dir / "train.h5", 48, 1);
  write_tiny_dataset(dir / "test.h5", 24, 2);
  write_file(dir / "clip.yaml", tiny_recipe(dir.path.string(), "clip", "", "[\"a {} one\", \"{}\"]"));
  const RunResult train = run_tessera("train clip.yaml --run-dir run", dir.path.string());
  BOOST_TEST_REQUIRE(train.exit_code == 0, train.output);
  const std::string metrics = read_file(dir / "run/metrics.jsonl");
  BOOST_TEST(metrics.find("\"zero_shot_accuracy\"") != std::string::npos, metrics);
  BOOST_TEST(metrics.find("\"i2t_r1\"") != std::string::npos, metrics);

  const RunResult embed = run_tessera("embed run/last.h5 --text 'a dark one' --text bright", dir.path.string());
  BOOST_TEST_REQUIRE(embed.exit_code == 0, "exit " << embed.exit_code << " signal " << embed.signal << ": " << embed.output);
  const std::vector<double> e = embedding_of(embed.output);
  BOOST_TEST(e.size() == 8u, embed.output);
  double norm = 0;
  for (double x : e) norm += x * x;
  BOOST_TEST(std::sqrt(norm) == 1.0, boost::test_tools::tolerance(1e-4));
  BOOST_TEST(embed.output.find("\"text\": \"bright\"") != std::string::npos, embed.output);
  // Printed to the last bit (the floats read back are the model's), and the text as valid JSON.
  {
    const tessera::train::TrainedModel model = tessera::train::TrainedModel::load(dir / "run/last.h5");
    tessera::NoGradGuard no_grad;
    auto& embedder = model.need<tessera::nn::TextToEmbedding>("embed");
    const std::vector<float> exact = tessera::l2_normalize_rows(embedder.embed_texts({"a dark one"})).to_vector<float>();
    BOOST_TEST_REQUIRE(exact.size() == e.size());
    for (size_t i = 0; i < e.size(); ++i) BOOST_TEST(float(e[i]) == exact[i], "value " << i);
    const RunResult file = run_tessera("embed run/last.h5 --text 'a dark one' --text x --out e.h5", dir.path.string());
    BOOST_TEST_REQUIRE(file.exit_code == 0, file.output);
    std::vector<hsize_t> dims;
    const std::vector<float> stored = read_dataset<float>(dir / "e.h5", "embeddings", dims);
    BOOST_TEST(dims == (std::vector<hsize_t>{2, 8}), boost::test_tools::per_element());
    BOOST_TEST(std::vector<float>(stored.begin(), stored.begin() + 8) == exact, boost::test_tools::per_element());
    BOOST_TEST(run_tessera("embed run/last.h5 --text x --out run/last.h5", dir.path.string()).exit_code == 1);
    // Its own output is replaced; another file only with --overwrite, a data set never.
    BOOST_TEST(run_tessera("embed run/last.h5 --text y --out e.h5", dir.path.string()).exit_code == 0);
    write_file(dir / "notes.h5", "notes\n");
    const RunResult foreign = run_tessera("embed run/last.h5 --text y --out notes.h5", dir.path.string());
    BOOST_TEST(foreign.exit_code == 1);
    BOOST_TEST(foreign.output.find("notes.h5 exists and was not written by tessera embed; pass --overwrite") !=
                   std::string::npos, foreign.output);
    BOOST_TEST(read_file(dir / "notes.h5") == "notes\n");
    BOOST_TEST(run_tessera("embed run/last.h5 --text y --out notes.h5 --overwrite", dir.path.string()).exit_code == 0);
    const RunResult data_set = run_tessera("embed run/last.h5 --text y --out test.h5 --overwrite", dir.path.string());
    BOOST_TEST(data_set.output.find("test.h5 is an image data set") != std::string::npos, data_set.output);
  }
  const RunResult quoted = run_tessera("embed run/last.h5 --text 'say \"hi\"\\'", dir.path.string());
  BOOST_TEST_REQUIRE(quoted.exit_code == 0, quoted.output);
  BOOST_TEST(quoted.output.find("{\"text\": \"say \\\"hi\\\"\\\\\", \"embedding\": [") == 0, quoted.output);

  const RunResult classify = run_tessera("classify run/last.h5 test.h5 --labels dark,mid,bright --limit 5", dir.path.string());
  BOOST_TEST_REQUIRE(classify.exit_code == 0, classify.output);
  BOOST_TEST(classify.output.find("zero-shot accuracy") != std::string::npos, classify.output);
  BOOST_TEST(classify.output.find("of 24 images") != std::string::npos, classify.output);
  // Header plus five image lines.
  BOOST_TEST(std::count(classify.output.begin(), classify.output.end(), '\n') == 7, classify.output);

  // predict: the same zero-shot similarities for every image, as HDF5 and as the best class per image.
  const RunResult predicted = run_tessera("predict run/last.h5 test.h5 --labels dark,mid,bright", dir.path.string());
  BOOST_TEST_REQUIRE(predicted.exit_code == 0, predicted.output);
  std::istringstream a(classify.output.substr(classify.output.find("index\t"))), b(predicted.output);
  std::string la, lb;
  std::getline(a, la), std::getline(b, lb);  // headers
  BOOST_TEST(lb == "index\tclass\tcosine");
  for (int i = 0; i < 5 && std::getline(a, la) && std::getline(b, lb); ++i)
    BOOST_TEST(la.substr(0, la.find('\t', la.find('\t') + 1)) == lb.substr(0, lb.find('\t', lb.find('\t') + 1)));
  const RunResult written = run_tessera("predict run/last.h5 test.h5 --labels dark,mid,bright --out s.h5", dir.path.string());
  BOOST_TEST_REQUIRE(written.exit_code == 0, written.output);
  BOOST_TEST(written.output.find("similarities [24, 3]") != std::string::npos, written.output);

  const RunResult one_label = run_tessera("classify run/last.h5 test.h5 --labels dark", dir.path.string());
  BOOST_TEST(one_label.exit_code != 0);
  BOOST_TEST(one_label.output.find("at least two --labels") != std::string::npos, one_label.output);
  const RunResult no_file = run_tessera("embed missing.h5 --text x", dir.path.string());
  BOOST_TEST(no_file.exit_code != 0);
  BOOST_TEST(no_file.output.find("missing.h5") != std::string::npos, no_file.output);
}

BOOST_AUTO_TEST_CASE(siglip_multi_positive_and_truncation_warning) {
  ScratchDir dir("siglip_cli");
  write_tiny_dataset(dir / "train.h5", 48, 3);
  write_tiny_dataset(dir / "test.h5", 24, 4);
  // A template longer than the 24-token context: captions get cut, with one warning.
  write_file(dir / "siglip.yaml",
             tiny_recipe(dir.path.string(), "siglip", "  multi_positive: true\n  init_logit_bias: -2\n",
                         "[\"{} is the class of this rather long caption\"]"));
  const RunResult r = run_tessera("train siglip.yaml --run-dir run", dir.path.string());
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  BOOST_TEST(r.output.find("were cut") != std::string::npos, r.output);
  BOOST_TEST(read_file(dir / "run/metrics.jsonl").find("zero_shot_accuracy") != std::string::npos);
  // The progress log follows t = exp(t') and b, which start at the model's 10 and -2 (configured).
  const std::vector<double> t = train_log_values(dir / "run/metrics.jsonl", "logit_scale"),
                            b = train_log_values(dir / "run/metrics.jsonl", "logit_bias");
  BOOST_TEST_REQUIRE(!t.empty());
  BOOST_TEST_REQUIRE(b.size() == t.size());
  BOOST_TEST(std::abs(t.front() - 10) < 0.5, t.front());
  BOOST_TEST(std::abs(b.front() + 2) < 0.5, b.front());
  BOOST_TEST(r.output.find("logit_bias ") != std::string::npos, r.output);
}

BOOST_AUTO_TEST_CASE(class_names_rename_the_classes_for_captions_and_prompts) {
  ScratchDir dir("clip_names");
  write_tiny_dataset(dir / "train.h5", 48, 1);  // classes dark, mid, bright
  write_tiny_dataset(dir / "test.h5", 24, 2);
  write_file(dir / "clip.yaml", tiny_recipe(dir.path.string(), "clip", "", "[\"a {} one\"]"));
  const RunResult train =
      run_tessera("train clip.yaml --run-dir run --set data.class_names=[black,grey,white]", dir.path.string());
  BOOST_TEST_REQUIRE(train.exit_code == 0, train.output);
  // The run's names count as the data set's classes: classify scores them.
  const RunResult renamed = run_tessera("classify run/last.h5 test.h5 --labels black,grey,white --limit 0", dir.path.string());
  BOOST_TEST_REQUIRE(renamed.exit_code == 0, renamed.output);
  BOOST_TEST(renamed.output.find("zero-shot accuracy") != std::string::npos, renamed.output);
  const RunResult other = run_tessera("classify run/last.h5 test.h5 --labels grey,black,white --limit 0", dir.path.string());
  BOOST_TEST_REQUIRE(other.exit_code == 0, other.output);
  BOOST_TEST(other.output.find("zero-shot accuracy") == std::string::npos, other.output);
  // One name per class, or an error that names the key and the file.
  const RunResult wrong = run_tessera("train clip.yaml --run-dir run2 --set data.class_names=[black,white]", dir.path.string());
  BOOST_TEST(wrong.exit_code != 0);
  BOOST_TEST(wrong.output.find("data.class_names has 2 names") != std::string::npos, wrong.output);
  BOOST_TEST(wrong.output.find("train.h5 has 3 classes") != std::string::npos, wrong.output);
}

BOOST_AUTO_TEST_CASE(recipe_mistakes_are_named) {
  ScratchDir dir("clip_bad");
  write_tiny_dataset(dir / "train.h5", 24, 5);
  write_tiny_dataset(dir / "test.h5", 24, 6);
  // No captions in the data set and no templates: nothing to train the text tower on.
  write_file(dir / "a.yaml", tiny_recipe(dir.path.string(), "clip", "", "[]"));
  const RunResult a = run_tessera("train a.yaml --run-dir run_a", dir.path.string());
  BOOST_TEST(a.exit_code != 0);
  BOOST_TEST(a.output.find("data.caption_templates") != std::string::npos, a.output);
  // A zero-shot template without a slot for the class name.
  std::string bad = tiny_recipe(dir.path.string(), "clip", "", "[\"{}\"]");
  bad.replace(bad.find("[\"a {} one\", \"{}\"]"), 18, "[\"a photo\"]");
  write_file(dir / "b.yaml", bad);
  const RunResult b = run_tessera("train b.yaml --run-dir run_b", dir.path.string());
  BOOST_TEST(b.exit_code != 0);
  BOOST_TEST(b.output.find("zero_shot_templates") != std::string::npos, b.output);
  // A misspelt tower key is caught by the recipe validation.
  std::string c = tiny_recipe(dir.path.string(), "clip", "", "[\"{}\"]");
  c.replace(c.find("heads: 2}\n  text"), 8, "hedas: 2");
  write_file(dir / "c.yaml", c);
  const RunResult cr = run_tessera("train c.yaml --run-dir run_c", dir.path.string());
  BOOST_TEST(cr.exit_code != 0);
  BOOST_TEST(cr.output.find("hedas") != std::string::npos, cr.output);
}

BOOST_AUTO_TEST_SUITE_END()
