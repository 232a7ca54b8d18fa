// Recipe validation: defaults, typed overrides, and errors that name the key path, the line and
// column, and the nearest valid key.
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <set>

#include "autograd/error.h"
#include "train/optim.h"
#include "train/recipe.h"

using namespace tessera;
using namespace tessera::train;

namespace {
const char* minimal = R"(seed: 3
data:
  train: a.h5
model:
  type: mlp
train:
  steps: 10
)";

// The message of the Error that `f` throws ("" if none).
template <class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The message of the Error that parsing throws ("" if none).
std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  return message_of([&] { Recipe::parse(text, "r.yaml", overrides); });
}

bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }
}  // namespace

BOOST_AUTO_TEST_SUITE(recipe)

BOOST_AUTO_TEST_CASE(defaults_are_filled_in) {
  const Recipe r = Recipe::parse(minimal, "dir/mlp_test.yaml");
  BOOST_TEST(r.name() == "mlp_test");
  BOOST_TEST(r.root().integer("seed") == 3);
  BOOST_TEST(r.section("data").string("train") == "a.h5");
  BOOST_TEST(r.section("data").string("eval") == "");
  BOOST_TEST(r.section("optim").string("type") == "adamw");
  BOOST_TEST(r.section("optim").number("lr") == 1e-3);
  BOOST_TEST(r.section("optim").numbers("betas") == std::vector<double>({0.9, 0.999}));  // adamw's own key
  BOOST_TEST(r.section("model").integers("hidden") == std::vector<int64_t>({256}));     // mlp's own key
  BOOST_TEST(r.section("train").integer("batch_size") == 128);
  BOOST_TEST(r.section("schedule").number("min_lr") == 0.0);
}

BOOST_AUTO_TEST_CASE(resolved_text_round_trips) {
  const Recipe r = Recipe::parse(std::string(minimal) + "optim:\n  lr: 3e-4\n", "r.yaml");
  const std::string text = r.text();
  BOOST_TEST(contains(text, "lr: 3e-4"), text);  // the author's spelling is kept
  const Recipe again = Recipe::parse(text, "again.yaml");
  BOOST_TEST(again.text() == text);
  BOOST_TEST(again.section("optim").number("lr") == 3e-4);
}

// Found by fuzz_recipe: a carriage return between a number and its comment stayed in the kept
// spelling ("5  \r"), and the resolved text then read back as "5".
BOOST_AUTO_TEST_CASE(blanks_around_a_number_do_not_stay_in_its_spelling) {
  const Recipe r = Recipe::parse(std::string(minimal) + "optim:\n  lr: 3e-4  \r   # a comment\n", "r.yaml");
  const std::string text = r.text();
  BOOST_TEST(contains(text, "lr: 3e-4\n"), text);
  BOOST_TEST(Recipe::parse(text, "again.yaml").text() == text);
  BOOST_TEST(r.section("optim").number("lr") == 3e-4);
}

BOOST_AUTO_TEST_CASE(unknown_key_names_path_line_column_and_nearest) {
  const std::string e = error_of(std::string(minimal) + "optim:\n  lrr: 0.1\n");
  BOOST_TEST(contains(e, "r.yaml:9:3: optim.lrr: unknown key (did you mean optim.lr?)"), e);
}

BOOST_AUTO_TEST_CASE(key_in_the_wrong_section_points_to_the_right_one) {
  const std::string e = error_of(std::string(minimal) + "  lr: 0.1\n");  // under train:
  BOOST_TEST(contains(e, "train.lr: unknown key (did you mean optim.lr?)"), e);
}

BOOST_AUTO_TEST_CASE(wrong_types_and_ranges) {
  BOOST_TEST(contains(error_of(std::string(minimal) + "  batch_size: many\n"), "r.yaml:8:15: train.batch_size: expected an integer, got 'many'"));
  BOOST_TEST(contains(error_of(std::string(minimal) + "  batch_size: 0\n"), "train.batch_size: 0 is out of range (must be at least 1)"));
  BOOST_TEST(contains(error_of(std::string(minimal) + "optim:\n  lr: fast\n"), "optim.lr: expected a finite number, got 'fast'"));
  BOOST_TEST(contains(error_of(std::string(minimal) + "log: 5\n"), "log: expected a section"));
  BOOST_TEST(contains(error_of(std::string(minimal) + "eval:\n  use_ema: maybe\n"), "eval.use_ema: expected true or false"));
  BOOST_TEST(contains(error_of(std::string(minimal) + "  ema_decay: 1.5\n"), "train.ema_decay: 1.5 is out of range (must be in [0, 0.999999])"));
}

BOOST_AUTO_TEST_CASE(missing_required_and_unknown_type) {
  BOOST_TEST(contains(error_of("model:\n  type: mlp\n"), "data.train: missing required key"));
  const std::string e = error_of("data:\n  train: a.h5\nmodel:\n  type: mpl\n  hidden: [3]\n");
  BOOST_TEST(contains(e, "r.yaml:4:9: model.type: unknown type 'mpl' (did you mean mlp?)"), e);
  BOOST_TEST(!contains(e, "model.hidden"), e);  // an unknown type's keys are not judged
  BOOST_TEST(contains(error_of(std::string(minimal) + "optim:\n  type: adamw\n  momentum: 0.9\n"), "optim.momentum: unknown key"));
}

BOOST_AUTO_TEST_CASE(every_problem_is_reported_at_once) {
  const std::string e = error_of(std::string(minimal) + "optim:\n  lrr: 1\n  weight_decay: -1\n");
  BOOST_TEST(contains(e, "2 problems"), e);
  BOOST_TEST(contains(e, "optim.lrr"), e);
  BOOST_TEST(contains(e, "optim.weight_decay"), e);
}

BOOST_AUTO_TEST_CASE(overrides_are_typed) {
  const Recipe r = Recipe::parse(minimal, "r.yaml",
                                 {"optim.lr=3e-4", "train.steps=1e3", "model.hidden=[64,32]", "optim.type=sgd",
                                  "optim.nesterov=true", "data.eval=b.h5", "eval.metrics=accuracy"});
  BOOST_TEST(r.section("optim").number("lr") == 3e-4);
  BOOST_TEST(r.section("train").integer("steps") == 1000);
  BOOST_TEST(r.section("model").integers("hidden") == std::vector<int64_t>({64, 32}));
  BOOST_TEST(r.section("optim").boolean("nesterov"));
  BOOST_TEST(r.section("data").string("eval") == "b.h5");
  BOOST_TEST(r.section("eval").strings("metrics") == std::vector<std::string>({"accuracy"}));
  BOOST_TEST(contains(error_of(minimal, {"optim.lrr=1"}), "--set optim.lrr: unknown key (did you mean optim.lr?)"));
  BOOST_TEST(contains(error_of(minimal, {"train.steps=ten"}), "--set train.steps: expected an integer, got 'ten'"));
  BOOST_TEST(contains(error_of(minimal, {"model.hidden=[0]"}), "--set model.hidden[0]: 0 is out of range"));
  BOOST_CHECK_THROW(Recipe::parse(minimal, "r.yaml", {"optim.lr"}), Error);
  BOOST_CHECK_THROW(Recipe::parse(minimal, "r.yaml", {"optim.lr="}), Error);
}

// A budget on the command line replaces the recipe's other budget instead of clashing with it.
BOOST_AUTO_TEST_CASE(a_budget_override_replaces_the_recipes_budget) {
  const std::string epochs = std::string(minimal).replace(std::string(minimal).find("steps: 10"), 9, "epochs: 3");
  const Recipe a = Recipe::parse(epochs, "r.yaml", {"train.steps=150"});
  BOOST_TEST(a.section("train").integer("steps") == 150);
  BOOST_TEST(a.section("train").number("epochs") == 0.0);
  const Recipe b = Recipe::parse(minimal, "r.yaml", {"train.epochs=2"});
  BOOST_TEST(b.section("train").integer("steps") == 0);
  BOOST_TEST(b.section("train").number("epochs") == 2.0);
  // Both given: as the user said (the trainer refuses two budgets).
  const Recipe c = Recipe::parse(minimal, "r.yaml", {"train.epochs=2", "train.steps=5"});
  BOOST_TEST(c.section("train").integer("steps") == 5);
  BOOST_TEST(c.section("train").number("epochs") == 2.0);
}

BOOST_AUTO_TEST_CASE(yaml_syntax_errors_have_a_position) {
  const std::string e = error_of("data:\n  train: [a.h5\n");
  BOOST_TEST(contains(e, "r.yaml:"), e);
  BOOST_TEST(contains(e, "YAML syntax error"), e);
  BOOST_CHECK_THROW(Recipe::load("/nonexistent/recipe.yaml"), Error);
}

// What YAML allows but a recipe must not mean silently: a key given twice (yaml-cpp would read the
// first), a second document after '---', numbers that are not finite, an epoch count no run ends.
BOOST_AUTO_TEST_CASE(duplicate_keys_second_documents_and_non_finite_numbers_are_refused) {
  std::string e = error_of("data:\n  train: a.h5\nmodel:\n  type: mlp\noptim:\n  lr: 0.1\n  lr: 0.2\n");
  BOOST_TEST(contains(e, "r.yaml:7:3: optim.lr is given twice (first on line 6)"), e);
  e = error_of("data:\n  train: a.h5\nmodel:\n  type: mlp\ndata:\n  eval: b.h5\n");
  BOOST_TEST(contains(e, "r.yaml:5:1: data is given twice (first on line 1)"), e);
  e = error_of("data:\n  train: a.h5\nmodel:\n  type: mlp\n---\ntrain:\n  steps: 5\n");
  BOOST_TEST(contains(e, "a second YAML document ('---') starts here"), e);
  for (const std::string v : {".inf", "-.inf", ".nan"}) {
    e = error_of(std::string(minimal) + "optim:\n  lr: " + v + "\n");
    BOOST_TEST(contains(e, "optim.lr: expected a finite number, got '" + v + "'"), e);
  }
  e = error_of(minimal, {"train.clip_grad_norm=.inf"});
  BOOST_TEST(contains(e, "expected a finite number"), e);
}

BOOST_AUTO_TEST_CASE(nearest_key_is_none_when_nothing_is_close) {
  BOOST_TEST(nearest_key("lrr", {"lr", "seed"}) == "lr");
  BOOST_TEST(nearest_key("batchsize", {"batch_size", "steps"}) == "batch_size");
  BOOST_TEST(nearest_key("zzzzzz", {"lr", "seed"}) == "");
}

// The recipes we ship are checked against the schema (every key known, every value of its type), so
// a misspelt key in one of them fails here rather than when a user first runs it.
BOOST_AUTO_TEST_CASE(every_shipped_recipe_validates) {
  const std::filesystem::path dir = std::filesystem::path(TESSERA_SOURCE_DIR) / "recipes";
  std::set<std::string> checked;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    // lr_scales entries are free text to the schema; the optimizer's parser checks their form.
    const std::string message = message_of([&] {
      parse_lr_scales(Recipe::load(entry.path().string()).section("optim").strings("lr_scales"));
    });
    BOOST_TEST(message.empty(), entry.path().filename().string() << ": " << message);
    checked.insert(entry.path().stem().string());
  }
  for (const char* name : {"vit_fmnist", "vae_fmnist", "vqvae_fmnist", "fsq_fmnist", "clip_fmnist", "siglip_fmnist"})
    BOOST_TEST(checked.count(name) == 1, "recipes/" << name << ".yaml was not found");
}

BOOST_AUTO_TEST_SUITE_END()
