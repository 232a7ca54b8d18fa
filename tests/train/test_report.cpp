// Run reports (train/report/): attention rollout against a hand computation, the sections each
// model kind's report holds, that the page is self-contained and its figures are the run's, that
// the trainer refreshes it after each evaluation, and the errors `tessera report` gives.
#include <boost/test/unit_test.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <regex>

#include "autograd/ops.h"
#include "tests/support/cli_helpers.h"
#include "train/report/rollout.h"

using namespace tessera;
using namespace tessera::testing;
namespace fs = std::filesystem;

namespace {

// The section ids of a report, in order.
std::vector<std::string> sections_of(const std::string& html) {
  std::vector<std::string> out;
  const std::regex id("<section id=\"([a-z_]+)\">");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), id); it != std::sregex_iterator(); ++it) out.push_back((*it)[1]);
  return out;
}

// Nothing fetched from elsewhere: no script, no external source or link, images inline.
void require_self_contained(const std::string& html) {
  BOOST_TEST(html.find("<script") == std::string::npos);
  BOOST_TEST(html.find("src=\"http") == std::string::npos);
  BOOST_TEST(html.find("href=\"http") == std::string::npos);
  BOOST_TEST(html.find("url(") == std::string::npos);
  const std::regex img("<img [^>]*src=\"([^\"]{0,30})");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), img); it != std::sregex_iterator(); ++it)
    BOOST_TEST((*it)[1].str().rfind("data:image/png;base64,", 0) == 0u, (*it)[1].str());
}

const std::string kCommon = R"(seed: 0
threads: 2
data: {train: train.h5, eval: eval.h5, caption_templates: ["a {} one"]}
optim: {type: adamw, lr: 0.01}
schedule: {type: cosine, warmup_steps: 1}
train: {steps: 6, batch_size: 8}
eval: {every: 3, batch_size: 30}
log: {every: 2}
)";

struct ReportRun : ScratchDir {
  ReportRun(const std::string& name, const std::string& model, const std::string& extra = "") : ScratchDir(name) {
    write_tiny_dataset(*this / "train.h5", 40, 1);
    write_tiny_dataset(*this / "eval.h5", 30, 2);
    write_file(*this / "r.yaml", kCommon + model + extra);
    const RunResult r = run_tessera("train r.yaml --run-dir run", path.string());
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  }
  std::string report() const { return read_file(*this / "run/report.html"); }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(report)

BOOST_AUTO_TEST_CASE(rollout_follows_the_residual_mixed_attention_through_the_blocks) {
  // Two blocks over a CLS token and two patches; per block the (head-averaged) weights of image 0.
  const Tensor a1 = Tensor::from_vector<float>({0.2f, 0.5f, 0.3f, 0.1f, 0.8f, 0.1f, 0.6f, 0.2f, 0.2f}, {1, 3, 3});
  const Tensor a2 = Tensor::from_vector<float>({0.1f, 0.1f, 0.8f, 0.3f, 0.3f, 0.4f, 0.5f, 0.25f, 0.25f}, {1, 3, 3});
  nn::ImageAttention att;
  att.layers = {a1, a2};
  att.cls_first = true;
  att.grid_height = 1, att.grid_width = 2;
  // By hand: M = 0.5 A + 0.5 I (rows already sum to 1), R = M2 M1, shares = R[0, 1:].
  const std::vector<double> m1{0.6, 0.25, 0.15, 0.05, 0.9, 0.05, 0.3, 0.1, 0.6};
  const std::vector<double> m2{0.55, 0.05, 0.4, 0.15, 0.65, 0.2, 0.25, 0.125, 0.625};
  std::vector<double> r(9, 0);
  for (int i = 0; i < 3; ++i)
    for (int k = 0; k < 3; ++k)
      for (int j = 0; j < 3; ++j) r[size_t(i * 3 + j)] += m2[size_t(i * 3 + k)] * m1[size_t(k * 3 + j)];
  const std::vector<double> cls = train::attention_rollout(att, 0);
  BOOST_REQUIRE_EQUAL(cls.size(), 2u);
  BOOST_TEST(std::abs(cls[0] - r[1]) < 1e-6);
  BOOST_TEST(std::abs(cls[1] - r[2]) < 1e-6);
  // Average pooling: the mean of every token's row.
  att.cls_first = false;
  const std::vector<double> avg = train::attention_rollout(att, 0);
  BOOST_REQUIRE_EQUAL(avg.size(), 3u);
  for (int j = 0; j < 3; ++j) BOOST_TEST(std::abs(avg[size_t(j)] - (r[size_t(j)] + r[size_t(3 + j)] + r[size_t(6 + j)]) / 3) < 1e-6);
}

BOOST_AUTO_TEST_CASE(each_model_kind_gets_its_sections_and_the_page_is_self_contained) {
  const std::vector<std::string> common{"summary", "recipe", "training", "evaluation", "samples"};
  struct Kind {
    std::string name, model;
    std::vector<std::string> analyses;
  };
  const std::vector<Kind> kinds{
      {"mlp", "model: {type: mlp, hidden: [8]}\n", {"confusion"}},
      {"vit", "model: {type: vit, patch_size: 3, width: 8, depth: 2, heads: 2, pooling: cls}\n", {"confusion", "attention"}},
      {"siglip",
       "model:\n  type: siglip\n  image: {patch_size: 3, width: 8, depth: 1, heads: 2, pooling: avg}\n"
       "  text: {context: 16, width: 8, depth: 1, heads: 2}\n  embed_dim: 8\nloss: {type: contrastive}\n",
       {"zero_shot", "similarity", "attention"}},
  };
  for (const Kind& k : kinds) {
    BOOST_TEST_CONTEXT(k.name) {
      ReportRun run("report_" + k.name, k.model);
      const std::string html = run.report();
      std::vector<std::string> wanted = common;
      wanted.insert(wanted.end(), k.analyses.begin(), k.analyses.end());
      BOOST_TEST(sections_of(html) == wanted, fmt::format("{}", fmt::join(sections_of(html), ", ")));
      require_self_contained(html);
      BOOST_TEST(html.find("could not be made") == std::string::npos);
      // Curves of the logged values, as SVG, and the machine it ran on.
      BOOST_TEST(html.find(">loss</text>") != std::string::npos);
      BOOST_TEST(html.find(">lr</text>") != std::string::npos);
      BOOST_TEST(html.find(">grad_norm</text>") != std::string::npos);
      BOOST_TEST(html.find("cpu features") != std::string::npos);
      BOOST_TEST(html.find("a &#39;" + k.name + "&#39; model after 6 steps") != std::string::npos);
      if (k.name != "siglip") {
        // The confusion matrix counts every one of the 30 eval images once.
        const size_t at = html.find("<section id=\"confusion\">");
        const std::string table = html.substr(at, html.find("</table>", at) - at);
        const std::regex cell("<td style=\"[^\"]*\">([0-9]+)</td>");
        int total = 0;
        for (auto it = std::sregex_iterator(table.begin(), table.end(), cell); it != std::sregex_iterator(); ++it)
          total += std::stoi((*it)[1]);
        BOOST_TEST(total == 30);
      }
      if (k.name != "mlp") BOOST_TEST(html.find("test image 5") != std::string::npos);  // six attention maps
    }
  }
}

BOOST_AUTO_TEST_CASE(the_trainer_refreshes_it_and_the_command_writes_it_anywhere) {
  ReportRun run("report_refresh", "model: {type: mlp, hidden: [8]}\n");
  BOOST_TEST(run.report().find("Last evaluation (step 6)") != std::string::npos);
  RunResult r = run_tessera("report run --out elsewhere/r.html --images 10", run.path.string());
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  BOOST_TEST(read_file(run / "elsewhere/r.html").find("The first 10 images of eval.h5") != std::string::npos);

  // log.report: false leaves no report; a run without a checkpoint yet still gets its curves.
  r = run_tessera("train r.yaml --run-dir quiet --set log.report=false", run.path.string());
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  BOOST_TEST(!fs::exists(run / "quiet/report.html"));
  fs::remove(run / "quiet/last.h5");
  r = run_tessera("report quiet", run.path.string());
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const std::string html = read_file(run / "quiet/report.html");
  BOOST_TEST(html.find("No model analyses: quiet/last.h5 does not exist yet.") != std::string::npos);
  BOOST_TEST(sections_of(html).size() == 5u);

  r = run_tessera("report train.h5", run.path.string());
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.output.find("report: train.h5 is not a run folder") != std::string::npos, r.output);
  fs::create_directories(run / "empty");
  r = run_tessera("report empty", run.path.string());
  BOOST_TEST(r.output.find("empty has no recipe.yaml") != std::string::npos, r.output);
}

BOOST_AUTO_TEST_SUITE_END()
