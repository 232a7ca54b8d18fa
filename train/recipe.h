#pragma once
// Recipes: one YAML file that says everything about a run. A schema (a tree of typed fields
// with defaults) validates the file strictly — an unknown key, a wrong type or an out-of-range
// value is an error naming the key path, the line and column, and for a misspelt key the
// nearest valid one — and fills in every default, so the resolved recipe is complete and is
// what gets printed, saved in the run folder and stored in every checkpoint.
//
// Sections whose fields depend on a `type:` (model, loss, optim, schedule) take their extra
// fields from the registry entry of that type (train/registry.h).
#include <yaml-cpp/yaml.h>

#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace tessera::train {

enum class Kind { integer, number, boolean, string, integer_list, number_list, string_list, section };

struct Field {
  std::string key;
  Kind kind = Kind::string;
  std::string default_yaml;  // YAML text of the default; ignored for sections
  std::string help;
  bool required = false;
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  std::vector<std::string> choices;  // allowed values of a string
  std::vector<Field> fields;         // of a section
  // For a section chosen by its `type:` key: the fields a given type adds (null = unknown type)
  // and the list of known types, both from a registry.
  std::function<const std::vector<Field>*(const std::string& type)> typed_fields;
  std::function<std::vector<std::string>()> type_names;
};

// Field builders, so that a schema reads as a table.
Field integer(std::string key, int64_t default_value, std::string help, double min = 0,
              double max = std::numeric_limits<double>::infinity());
Field number(std::string key, double default_value, std::string help, double min = -std::numeric_limits<double>::infinity(),
             double max = std::numeric_limits<double>::infinity());
Field boolean(std::string key, bool default_value, std::string help);
Field string(std::string key, std::string default_value, std::string help, std::vector<std::string> choices = {});
Field required_string(std::string key, std::string help);
Field number_list(std::string key, std::string default_yaml, std::string help);
Field integer_list(std::string key, std::string default_yaml, std::string help, double min = 0);
Field string_list(std::string key, std::string default_yaml, std::string help);
Field section(std::string key, std::string help, std::vector<Field> fields);

// A validated, fully resolved part of a recipe with typed accessors. Keys are those of the
// schema, so a missing key here is a programming error (it throws naming the path).
class Section {
 public:
  Section(YAML::Node node, std::string path) : node_(std::move(node)), path_(std::move(path)) {}
  int64_t integer(const std::string& key) const;
  double number(const std::string& key) const;
  bool boolean(const std::string& key) const;
  std::string string(const std::string& key) const;
  std::vector<int64_t> integers(const std::string& key) const;
  std::vector<double> numbers(const std::string& key) const;
  std::vector<std::string> strings(const std::string& key) const;
  Section section(const std::string& key) const;
  const std::string& path() const { return path_; }

 private:
  YAML::Node get(const std::string& key) const;
  YAML::Node node_;
  std::string path_;
};

class Recipe {
 public:
  // Reads and validates `path`, applying `--set key=value` overrides first.
  static Recipe load(const std::string& path, const std::vector<std::string>& overrides = {});
  // Validates recipe text (e.g. the copy stored in a checkpoint); `origin` names it in errors.
  static Recipe parse(const std::string& text, const std::string& origin, const std::vector<std::string>& overrides = {});

  const std::string& name() const { return name_; }  // the recipe file's stem
  void set_name(std::string name) { name_ = std::move(name); }
  std::string text() const;                          // the resolved recipe as YAML
  Section root() const { return Section(resolved_, ""); }
  Section section(const std::string& key) const { return root().section(key); }

 private:
  std::string name_;
  YAML::Node resolved_;
};

// The schema every recipe is checked against (train/schema.cpp).
const Field& recipe_schema();

// The valid key nearest to `key` by edit distance, or "" when none is close.
std::string nearest_key(const std::string& key, const std::vector<std::string>& candidates);

}  // namespace tessera::train
