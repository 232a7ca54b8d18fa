// Weights in and out: safetensors files (read and written by train/safetensors.h, malformed ones
// refused by name), the JSON reader behind them, `tessera export` under Tessera's, timm's and
// open_clip's names, `model.from` taking each back, and — with the test-only venv setup.sh makes
// (tests/interop) — timm and open_clip loading the exports in one line and agreeing with Tessera.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "autograd/error.h"
#include "tests/support/cli_helpers.h"
#include "train/checkpoint.h"
#include "train/json_value.h"
#include "train/safetensors.h"

using namespace tessera;
using namespace tessera::testing;
namespace fs = std::filesystem;

namespace {

std::string bytes_of(const std::string& path) { return read_file(path); }

// A safetensors file from a header text and data bytes, as another writer might make it.
void write_raw(const std::string& path, const std::string& header, const std::string& data, int64_t claimed = -1) {
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = claimed < 0 ? header.size() : uint64_t(claimed);
  for (int i = 0; i < 8; ++i) out.put(char(uint8_t(n >> (8 * i))));
  out << header << data;
}

std::string read_error(const std::string& path) {
  try {
    train::read_safetensors(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string parse_error(const std::string& text) {
  try {
    train::JsonValue::parse(text, "test.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

const char* kVit = R"(seed: 0
threads: 2
data: {train: train.h5, eval: eval.h5}
model: {type: vit, patch_size: 3, width: 16, depth: 1, heads: 2, pooling: POOLING}
optim: {type: adamw, lr: 0.01, weight_decay: 0.1}
schedule: {type: cosine, warmup_steps: 1}
train: {steps: 4, batch_size: 8}
eval: {batch_size: 30}
log: {every: 2}
)";

// CLIP gets a square text projection (embed_dim = text width), whose transposition shapes cannot show.
std::string dual_recipe(const std::string& type, const std::string& pooling) {
  const std::string embed_dim = type == "clip" ? "16" : "8";
  return "seed: 0\nthreads: 2\n"
         "data: {train: train.h5, eval: eval.h5, caption_templates: [\"a {} one\", \"{}\"]}\n"
         "model:\n  type: " + type + "\n"
         "  image: {patch_size: 3, width: 16, depth: 1, heads: 2, pooling: " + pooling + "}\n"
         "  text: {context: 24, width: 16, depth: 1, heads: 2}\n"
         "  embed_dim: " + embed_dim + "\n"
         "loss: {type: contrastive}\n"
         "optim: {type: adamw, lr: 1.0e-3, weight_decay: 0.1}\n"
         "schedule: {type: cosine, warmup_steps: 1}\n"
         "train: {steps: 4, batch_size: 16}\n"
         "eval: {batch_size: 30}\n"
         "log: {every: 2}\n";
}

std::string vit_recipe(const std::string& pooling) {
  std::string r = kVit;
  r.replace(r.find("POOLING"), 7, pooling);
  return r;
}

// A tiny run folder with one trained model in run/last.h5.
struct TrainedTiny : ScratchDir {
  TrainedTiny(const std::string& name, const std::string& recipe) : ScratchDir(name) {
    write_tiny_dataset(*this / "train.h5", 40, 1);
    write_tiny_dataset(*this / "eval.h5", 30, 2);
    write_file(*this / "model.yaml", recipe);
    const RunResult r = tessera("train model.yaml --run-dir run");
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  }
  RunResult tessera(const std::string& args) const { return run_tessera(args, path.string()); }
  // Trains one step at learning rate 0 from `weights` (model.from): the weights it starts from.
  train::Checkpoint started_from(const std::string& weights, const std::string& run_dir) const {
    const RunResult r = tessera("train model.yaml --run-dir " + run_dir + " --set model.from=" + weights +
                                " --set train.steps=1 --set optim.lr=0 --set schedule.warmup_steps=0");
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    return train::load_checkpoint(*this / (run_dir + "/last.h5"));
  }
};

// Parameters of two checkpoints equal: bitwise, or within `tolerance` of each other.
void require_same_params(const train::Checkpoint& a, const train::Checkpoint& b, double tolerance) {
  BOOST_REQUIRE_EQUAL(a.params.size(), b.params.size());
  for (const auto& [name, t] : a.params) {
    const std::vector<double> u = t.to_vector<double>(), v = b.params.at(name).to_vector<double>();
    BOOST_REQUIRE_EQUAL(u.size(), v.size());
    double worst = 0;
    for (size_t i = 0; i < u.size(); ++i) worst = std::max(worst, std::abs(u[i] - v[i]));
    BOOST_TEST(worst <= tolerance, name << " differs by " << worst);
  }
}

// The test-only venv with timm and open_clip (setup.sh), or why it is missing.
std::string interop_python() { return TESSERA_INTEROP_PYTHON; }
std::string interop_missing() {
  const RunResult r = run_shell("'" + interop_python() + "' -c 'import timm, open_clip, safetensors' 2>&1");
  return r.exit_code == 0 ? "" : "no test venv with timm and open_clip at " + interop_python() +
                                     " (setup.sh makes it from PyPI): " + r.output;
}
boost::test_tools::assertion_result interop_available(boost::unit_test::test_unit_id) {
  const std::string why = interop_missing();
  if (why.empty() || std::getenv("CI") != nullptr) return true;
  boost::test_tools::assertion_result skip(false);
  skip.message() << why;
  return skip;
}

RunResult check_in_python(const std::string& args) {
  return run_shell("'" + interop_python() + "' '" TESSERA_SOURCE_DIR "/tests/interop/check_interop.py' " + args + " 2>&1");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(json_reader)

BOOST_AUTO_TEST_CASE(reads_nested_values_escapes_and_exact_integers) {
  const auto v = train::JsonValue::parse(
      R"( {"a": [1, -2.5e1, true, null], "s": "q\"\\\/\n\u00e9\ud83d\ude00", "big": 9007199254740993, "o": {}} )", "t");
  const auto& a = v.find("a")->as_array("a");
  BOOST_TEST(a.size() == 4u);
  BOOST_TEST(a[0].as_integer("a0", 0, 10) == 1);
  BOOST_TEST(a[1].as_number("a1") == -25.0);
  BOOST_TEST(a[2].as_bool("a2"));
  BOOST_TEST(a[3].is_null());
  BOOST_TEST(v.find("s")->as_string("s") == "q\"\\/\n\xc3\xa9\xf0\x9f\x98\x80");
  BOOST_TEST(v.find("big")->as_integer("big", 0, INT64_MAX) == 9007199254740993LL);  // not rounded through a double
  BOOST_TEST(v.find("o")->as_object("o").empty());
  BOOST_TEST(v.find("missing") == nullptr);
}

BOOST_AUTO_TEST_CASE(malformed_text_is_refused_with_its_place) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"{\"a\": 1} x", "unexpected text after"},
      {"{\"a\": 1, \"a\": 2}", "the key \"a\" appears twice"},
      {"\"\\ud800\"", "lone high surrogate"},
      {"\"\\udc00\"", "lone low surrogate"},
      {"01", "unexpected text after"},
      {"\"a\nb\"", "control character"},
      {"[1, 2", "expected ',' or ']'"},
      {"{\"a\" 1}", "expected ':'"},
      {"", "the text ends"},
      {std::string(200, '['), "nested deeper than 64"},
      {"\"\\x\"", "unknown escape"},
      {"-", "a number needs digits"},
  };
  for (const auto& [text, wanted] : cases) {
    const std::string e = parse_error(text);
    BOOST_TEST(e.find("test.json: invalid JSON at byte") != std::string::npos, text << " -> " << e);
    BOOST_TEST(e.find(wanted) != std::string::npos, text << " -> " << e);
  }
  const auto v = train::JsonValue::parse("[1.5, 3, \"x\"]", "t");
  BOOST_CHECK_THROW(v.as_array("v")[0].as_integer("n", 0, 9), Error);  // 1.5 is not whole
  BOOST_CHECK_THROW(v.as_array("v")[1].as_integer("n", 0, 2), Error);  // 3 is out of range
  BOOST_CHECK_THROW(v.as_array("v")[2].as_number("n"), Error);
  BOOST_CHECK_THROW(v.as_object("v"), Error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(safetensors_files)

BOOST_AUTO_TEST_CASE(round_trip_keeps_names_shapes_dtypes_values_and_metadata) {
  ScratchDir dir("st_round_trip");
  const std::string path = dir / "w.safetensors";
  const train::NamedTensorList tensors{
      {"blocks.0.weight", Tensor::from_vector<float>({1.5f, -2.f, 3.25f, NAN, INFINITY, -0.f}, {2, 3})},
      {"scale", Tensor::from_vector<double>({0.1}, {})},
      {"steps", Tensor::from_vector<int64_t>({1, -2, int64_t(1) << 40, 4}, {4})},
      {"empty", Tensor::zeros({0, 5}, DType::i32)},
      {"flag \"quoted\"", Tensor::from_vector<uint8_t>({0, 1, 255}, {3})},
  };
  train::write_safetensors(path, tensors, {{"format", "pt"}, {"note", "é \"x\""}});
  BOOST_TEST(!fs::exists(path + ".tmp"));
  const std::string raw = bytes_of(path);
  uint64_t header = 0;
  for (int i = 7; i >= 0; --i) header = (header << 8) | uint8_t(raw[size_t(i)]);
  BOOST_TEST((8 + header) % 8 == 0u);  // the data is 8-byte aligned

  const train::SafetensorsFile f = train::read_safetensors(path);
  BOOST_TEST(f.metadata.at("format") == "pt");
  BOOST_TEST(f.metadata.at("note") == "é \"x\"");
  BOOST_REQUIRE_EQUAL(f.tensors.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& a = tensors[i].second;
    const Tensor& b = f.tensors[i].second;
    BOOST_TEST(f.tensors[i].first == tensors[i].first);
    BOOST_TEST(a.shape() == b.shape(), tensors[i].first);
    BOOST_TEST(int(a.dtype()) == int(b.dtype()), tensors[i].first);
    BOOST_TEST(std::memcmp(a.raw_data(), b.raw_data(), size_t(a.numel()) * element_size(a.dtype())) == 0, tensors[i].first);
  }
}

BOOST_AUTO_TEST_CASE(bf16_and_f16_are_widened_exactly) {
  ScratchDir dir("st_half");
  const std::string path = dir / "h.safetensors";
  // BF16: 1.0, -2.5, +inf; F16: 1.0, -2.0, 65504 (largest), 2^-24 (smallest subnormal), -0, NaN.
  const uint16_t bf16[] = {0x3F80, 0xC020, 0x7F80};
  const uint16_t f16[] = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x8000, 0x7E00};
  std::string data(reinterpret_cast<const char*>(bf16), sizeof bf16);
  data += std::string(reinterpret_cast<const char*>(f16), sizeof f16);
  write_raw(path, R"({"b": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}, )"
                  R"("h": {"dtype": "F16", "shape": [2, 3], "data_offsets": [6, 18]}})", data);
  const train::SafetensorsFile f = train::read_safetensors(path);
  const std::vector<float> b = f.tensors[0].second.to_vector<float>(), h = f.tensors[1].second.to_vector<float>();
  BOOST_TEST(f.dtypes.at("b") == "BF16");
  BOOST_TEST(b[0] == 1.f);
  BOOST_TEST(b[1] == -2.5f);
  BOOST_TEST(std::isinf(b[2]));
  BOOST_TEST(h[0] == 1.f);
  BOOST_TEST(h[1] == -2.f);
  BOOST_TEST(h[2] == 65504.f);
  BOOST_TEST(h[3] == std::ldexp(1.f, -24));
  BOOST_TEST((h[4] == 0.f && std::signbit(h[4])));
  BOOST_TEST(std::isnan(h[5]));
}

BOOST_AUTO_TEST_CASE(malformed_files_are_refused_by_name_and_left_as_they_were) {
  ScratchDir dir("st_bad");
  const std::string good = R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})";
  const std::string eight(8, '\0');
  struct Case {
    std::string name, header, data;
    int64_t claimed;
    std::string wanted;
  };
  const std::vector<Case> cases{
      {"short", "", "", -2, "too short for the 8-byte header length"},
      {"huge_header", good, eight, int64_t(1) << 40, "the header says it is 1099511627776 bytes long"},
      {"header_past_end", good, eight, 200, "the header says it is 200 bytes long"},
      {"not_json", "{w}", eight, -1, "invalid JSON"},
      {"not_object", "[1]", eight, -1, "the header should be an object"},
      {"no_dtype", R"({"w": {"shape": [2], "data_offsets": [0, 8]}})", eight, -1, "'w' should be an object with dtype"},
      {"bad_dtype", R"({"w": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}})", eight, -1, "dtype C64"},
      {"size_mismatch", R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", eight, -1, "needs 12 bytes"},
      {"past_data", R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", eight, -1, "outside [0, 8]"},
      {"negative_shape", R"({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", eight, -1, "outside [0,"},
      {"overflowing_shape", R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296, 16], "data_offsets": [0, 8]}})",
       eight, -1, "more than the file's"},
      {"overlap", R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, )"
                  R"("b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", eight, -1, "overlap"},
      {"duplicate", R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, )"
                    R"("w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", eight, -1, "appears twice"},
      {"metadata_not_strings", R"({"__metadata__": {"a": 1}})", "", -1, "'__metadata__'.a should be a string"},
  };
  for (const Case& c : cases) {
    const std::string path = dir / (c.name + ".safetensors");
    if (c.claimed == -2) write_file(path, "abc");
    else write_raw(path, c.header, c.data, c.claimed);
    const std::string before = bytes_of(path);
    const std::string e = read_error(path);
    BOOST_TEST(e.find(path) != std::string::npos, c.name << ": " << e);
    BOOST_TEST(e.find(c.wanted) != std::string::npos, c.name << ": " << e);
    BOOST_TEST(bytes_of(path) == before, c.name);
  }
  BOOST_TEST(read_error(dir / "absent.safetensors").find("no such file") != std::string::npos);
  BOOST_CHECK_THROW(train::write_safetensors(dir / "no/such/folder/x.safetensors", {}, {}), Error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(interop)

BOOST_AUTO_TEST_CASE(vit_exports_come_back_through_model_from_unchanged) {
  for (const std::string pooling : {"avg", "cls"}) {
    TrainedTiny run("interop_vit_" + pooling, vit_recipe(pooling));
    const train::Checkpoint source = train::load_checkpoint(run / "run/last.h5");
    for (const std::string names : {"tessera", "timm"}) {
      const RunResult e = run.tessera("export run/last.h5 " + names + "/model.safetensors --names " + names);
      BOOST_REQUIRE_MESSAGE(e.exit_code == 0, e.output);
      BOOST_TEST(e.output.find("load it in Python with:") != std::string::npos, e.output);
      BOOST_TEST(fs::exists(run / (names + "/config.json")) == (names == "timm"));
      require_same_params(source, run.started_from(names + "/model.safetensors", "from_" + names), 0);
    }
    // A Tessera checkpoint serves as model.from too.
    require_same_params(source, run.started_from("run/last.h5", "from_h5"), 0);
    const std::string config = read_file(run / "timm/config.json");
    BOOST_TEST(config.find(pooling == "avg" ? "\"global_pool\": \"avg\"" : "\"global_pool\": \"token\"") != std::string::npos, config);
    BOOST_TEST(config.find("\"fc_norm\": false") != std::string::npos, config);
  }
}

BOOST_AUTO_TEST_CASE(dual_encoder_exports_come_back_through_model_from) {
  for (const auto& [type, pooling] : {std::pair<std::string, std::string>{"siglip", "avg"}, {"clip", "cls"}}) {
    TrainedTiny run("interop_" + type, dual_recipe(type, pooling));
    const train::Checkpoint source = train::load_checkpoint(run / "run/last.h5");
    for (const std::string names : {"tessera", "open_clip"}) {
      const RunResult e = run.tessera("export run/last.h5 " + names + "/model.safetensors --names " + names);
      BOOST_REQUIRE_MESSAGE(e.exit_code == 0, e.output);
      // open_clip's gray images are three equal channels: the filter is split in three and summed back.
      require_same_params(source, run.started_from(names + "/model.safetensors", "from_" + names),
                          names == "tessera" ? 0 : 1e-6);
    }
    const std::string config = read_file(run / "open_clip/open_clip_config.json");
    BOOST_TEST(config.find("\"timm_model_name\": \"local-dir:" + fs::absolute(run.path / "open_clip").string()) !=
               std::string::npos, config);
    BOOST_TEST(config.find("\"pool_type\": \"eos\"") != std::string::npos, config);
    BOOST_TEST((config.find("init_logit_bias") != std::string::npos) == (type == "siglip"), config);
  }
}

BOOST_AUTO_TEST_CASE(what_cannot_be_exported_or_loaded_is_refused_by_name) {
  TrainedTiny run("interop_refusals", vit_recipe("avg"));
  RunResult r = run.tessera("export run/last.h5 oc/model.safetensors --names open_clip");
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.output.find("holds a 'vit' model, which is not a dual encoder") != std::string::npos, r.output);
  BOOST_TEST(!fs::exists(run / "oc"));
  r = run.tessera("export run/last.h5 w.h5");
  BOOST_TEST(r.output.find("should end in .safetensors") != std::string::npos, r.output);
  r = run.tessera("export run/last.h5 w.safetensors --names keras");
  BOOST_TEST(r.output.find("--names 'keras': give tessera, timm or open_clip") != std::string::npos, r.output);

  // An existing file is kept unless --overwrite.
  write_file(run / "w.safetensors", "precious");
  r = run.tessera("export run/last.h5 w.safetensors");
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.output.find("w.safetensors exists; pass --overwrite") != std::string::npos, r.output);
  BOOST_TEST(read_file(run / "w.safetensors") == "precious");
  r = run.tessera("export run/last.h5 w.safetensors --overwrite");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);

  // Weights of another size name the tensor and both shapes; a missing file is named.
  r = run.tessera("train model.yaml --run-dir wide --set model.from=w.safetensors --set model.width=32");
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.output.find("model.from: 'pos_embed' in w.safetensors has shape [1, 4, 16], but the model's pos_embed is "
                           "[1, 4, 32]") != std::string::npos, r.output);
  r = run.tessera("train model.yaml --run-dir none --set model.from=absent.safetensors");
  BOOST_TEST(r.output.find("safetensors absent.safetensors: no such file") != std::string::npos, r.output);
  // CLS pooling needs a cls_token these weights lack.
  r = run.tessera("train model.yaml --run-dir cls --set model.from=w.safetensors --set model.pooling=cls");
  BOOST_TEST(r.output.find("model.from: w.safetensors has no 'cls_token'") != std::string::npos, r.output);
  // Tensors the model has no place for are named, with fc_norm explained.
  train::NamedTensorList extra;
  for (auto& [name, t] : train::read_safetensors(run / "w.safetensors").tensors) extra.emplace_back(name, t);
  extra.emplace_back("fc_norm.weight", Tensor::ones({16}));
  train::write_safetensors(run / "fc.safetensors", extra, {});
  r = run.tessera("train model.yaml --run-dir fc --set model.from=fc.safetensors");
  BOOST_TEST(r.output.find("holds 1 tensor the model has no place for: fc_norm.weight (fc_norm:") != std::string::npos, r.output);
  BOOST_TEST(!fs::exists(run / "fc/last.h5"));
}

// A conv stem (model.patch_stem: conv) trains from a recipe and round-trips under Tessera's names; timm and
// open_clip have no layout for it, which the export says rather than writing weights they would misread.
BOOST_AUTO_TEST_CASE(conv_stem_models_export_under_tessera_names_only) {
  std::string recipe = vit_recipe("avg");
  recipe.replace(recipe.find("patch_size: 3"), 13, "patch_size: 2, patch_stem: conv");
  TrainedTiny run("interop_conv_stem", recipe);
  const train::Checkpoint source = train::load_checkpoint(run / "run/last.h5");
  BOOST_TEST(source.params.count("patch_embed.proj.0.weight") == 1);
  BOOST_TEST(source.params.count("patch_embed.proj.weight") == 0);
  RunResult r = run.tessera("export run/last.h5 timm/model.safetensors --names timm");
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.output.find("has a convolutional stem (model.patch_stem: conv)") != std::string::npos, r.output);
  BOOST_TEST(!fs::exists(run / "timm"));
  r = run.tessera("export run/last.h5 tessera/model.safetensors");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  require_same_params(source, run.started_from("tessera/model.safetensors", "from_tessera"), 0);
  // The stem's weights do not load into a patch-stem model, and a patch size it cannot halve to is named.
  r = run.tessera("train model.yaml --run-dir patch --set model.from=tessera/model.safetensors --set model.patch_stem=patch");
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.output.find("has no 'patch_embed.proj.weight'") != std::string::npos, r.output);
  r = run.tessera("train model.yaml --run-dir three --set model.patch_size=3");
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.output.find("model.patch_stem conv halves the image once per convolution, so model.patch_size must be a "
                           "power of two >= 2, got 3") != std::string::npos, r.output);

  TrainedTiny dual("interop_conv_stem_siglip", dual_recipe("siglip", "avg"));
  r = dual.tessera("train model.yaml --run-dir conv --set model.image.patch_size=2 --set model.image.patch_stem=conv");
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  for (const std::string names : {"timm", "open_clip"}) {
    r = dual.tessera("export conv/last.h5 " + names + "/model.safetensors --names " + names);
    BOOST_TEST(r.exit_code == 1);
    BOOST_TEST(r.output.find("stem (model.") != std::string::npos, r.output);
  }
}

BOOST_AUTO_TEST_CASE(timm_and_open_clip_load_exports_in_one_line_and_agree, *boost::unit_test::precondition(interop_available)) {
  const std::string missing = interop_missing();
  BOOST_REQUIRE_MESSAGE(missing.empty(), missing);
  for (const std::string pooling : {"avg", "cls"}) {
    TrainedTiny run("interop_timm_" + pooling, vit_recipe(pooling));
    BOOST_REQUIRE(run.tessera("export run/last.h5 timm/model.safetensors --names timm").exit_code == 0);
    BOOST_REQUIRE(run.tessera("export run/last.h5 tessera/model.safetensors").exit_code == 0);
    BOOST_REQUIRE(run.tessera("predict run/last.h5 eval.h5 --out logits.h5").exit_code == 0);
    RunResult r = check_in_python("timm " + (run / "timm") + " " + (run / "eval.h5") + " " + (run / "logits.h5") + " " +
                                  (run / "run/last.h5"));
    BOOST_TEST(r.exit_code == 0, r.output);
    BOOST_TEST(r.output.find("ok: timm logits: (30, 3)") != std::string::npos, r.output);
    BOOST_TEST_MESSAGE(r.output);
    r = check_in_python("tessera " + (run / "tessera/model.safetensors") + " " + (run / "run/last.h5"));
    BOOST_TEST(r.exit_code == 0, r.output);
  }
  for (const auto& [type, pooling] : {std::pair<std::string, std::string>{"siglip", "avg"}, {"clip", "cls"}}) {
    TrainedTiny run("interop_open_clip_" + type, dual_recipe(type, pooling));
    BOOST_REQUIRE(run.tessera("export run/last.h5 oc/model.safetensors --names open_clip").exit_code == 0);
    BOOST_REQUIRE(run.tessera("tokenize run/last.h5 eval.h5 images.h5").exit_code == 0);
    BOOST_REQUIRE(run.tessera("embed run/last.h5 --text 'a dark one' --text '\"quoted\" ünï' --text '' --out texts.h5")
                      .exit_code == 0);
    const RunResult r = check_in_python("open_clip " + (run / "oc") + " " + (run / "eval.h5") + " " + (run / "images.h5") +
                                        " " + (run / "texts.h5") + " " + (run / "run/last.h5"));
    BOOST_TEST(r.exit_code == 0, r.output);
    BOOST_TEST(r.output.find(type == "clip" ? "ok: open_clip text embeddings: (3, 16)" : "ok: open_clip text embeddings: (3, 8)") !=
               std::string::npos, r.output);
    BOOST_TEST_MESSAGE(r.output);
  }
}

BOOST_AUTO_TEST_SUITE_END()
