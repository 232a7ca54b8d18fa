#include "train/recipe.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <yaml-cpp/eventhandler.h>

#include "autograd/error.h"
#include "data/dataset.h"

namespace tessera::train {

// ---- field builders ----

namespace {
Field make_field(std::string key, Kind kind, std::string default_yaml, std::string help) {
  Field f;
  f.key = std::move(key), f.kind = kind, f.default_yaml = std::move(default_yaml), f.help = std::move(help);
  return f;
}
}  // namespace

Field integer(std::string key, int64_t default_value, std::string help, double min, double max) {
  Field f = make_field(std::move(key), Kind::integer, std::to_string(default_value), std::move(help));
  f.min = min, f.max = max;
  return f;
}
Field number(std::string key, double default_value, std::string help, double min, double max) {
  Field f = make_field(std::move(key), Kind::number, fmt::format("{}", default_value), std::move(help));
  f.min = min, f.max = max;
  return f;
}
Field boolean(std::string key, bool default_value, std::string help) {
  return make_field(std::move(key), Kind::boolean, default_value ? "true" : "false", std::move(help));
}
Field string(std::string key, std::string default_value, std::string help, std::vector<std::string> choices) {
  Field f = make_field(std::move(key), Kind::string, "\"" + default_value + "\"", std::move(help));
  f.choices = std::move(choices);
  return f;
}
Field required_string(std::string key, std::string help) {
  Field f = make_field(std::move(key), Kind::string, "", std::move(help));
  f.required = true;
  return f;
}
Field number_list(std::string key, std::string default_yaml, std::string help) {
  return make_field(std::move(key), Kind::number_list, std::move(default_yaml), std::move(help));
}
Field integer_list(std::string key, std::string default_yaml, std::string help, double min) {
  Field f = make_field(std::move(key), Kind::integer_list, std::move(default_yaml), std::move(help));
  f.min = min;
  return f;
}
Field string_list(std::string key, std::string default_yaml, std::string help) {
  return make_field(std::move(key), Kind::string_list, std::move(default_yaml), std::move(help));
}
Field section(std::string key, std::string help, std::vector<Field> fields) {
  Field f = make_field(std::move(key), Kind::section, "", std::move(help));
  f.fields = std::move(fields);
  return f;
}

// ---- nearest key ----

namespace {
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = up;
    }
  }
  return row[b.size()];
}
}  // namespace

std::string nearest_key(const std::string& key, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, key.size() / 3) + 1;  // farther than this is no suggestion
  for (const std::string& c : candidates) {
    const size_t d = edit_distance(key, c);
    if (d < best_distance) best = c, best_distance = d;
  }
  return best;
}

// ---- Section ----

YAML::Node Section::get(const std::string& key) const {
  const YAML::Node n = node_[key];
  if (!n) fail("recipe: {}{} is not in the resolved recipe", path_.empty() ? "" : path_ + ".", key);
  return n;
}
int64_t Section::integer(const std::string& key) const { return get(key).as<int64_t>(); }
double Section::number(const std::string& key) const { return get(key).as<double>(); }
bool Section::boolean(const std::string& key) const { return get(key).as<bool>(); }
std::string Section::string(const std::string& key) const { return get(key).as<std::string>(); }
std::vector<int64_t> Section::integers(const std::string& key) const { return get(key).as<std::vector<int64_t>>(); }
std::vector<double> Section::numbers(const std::string& key) const { return get(key).as<std::vector<double>>(); }
std::vector<std::string> Section::strings(const std::string& key) const {
  return get(key).as<std::vector<std::string>>();
}
Section Section::section(const std::string& key) const { return Section(get(key), path_.empty() ? key : path_ + "." + key); }

// ---- validation ----

namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::string child_path(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

class Validator {
 public:
  Validator(std::string origin, std::set<std::string> overridden)
      : origin_(std::move(origin)), overridden_(std::move(overridden)) {}

  YAML::Node section(const YAML::Node& in, const Field& schema, const std::string& path) {
    YAML::Node out(YAML::NodeType::Map);
    if (in && !in.IsNull() && !in.IsMap()) {
      error(in, path, "expected a section (keys and values), got {}", describe(in));
      return out;
    }
    std::vector<const Field*> fields;
    for (const Field& f : schema.fields) fields.push_back(&f);
    bool known_type = true;  // with an unknown type, its keys cannot be judged
    if (schema.typed_fields) {
      const std::string type = type_of(in, schema, path);
      const std::vector<Field>* extra = type.empty() ? nullptr : schema.typed_fields(type);
      if (extra)
        for (const Field& f : *extra) fields.push_back(&f);
      known_type = extra != nullptr;
    }
    if (in && in.IsMap() && known_type)
      for (auto it = in.begin(); it != in.end(); ++it) {
        const std::string key = it->first.as<std::string>();
        if (std::none_of(fields.begin(), fields.end(), [&](const Field* f) { return f->key == key; }))
          unknown_key(it->first, path, key, fields);
      }
    for (const Field* f : fields) {
      const std::string p = child_path(path, f->key);
      const bool present = in && in.IsMap() && in[f->key];
      const YAML::Node value = present ? in[f->key] : YAML::Node(YAML::NodeType::Map);
      if (f->kind == Kind::section) {
        out[f->key] = section(value, *f, p);
      } else if (present && !value.IsNull()) {
        out[f->key] = scalar_or_list(value, *f, p);
      } else if (present && !f->required) {
        error(value, p, "has no value (remove the key to get the default, {})", f->default_yaml);
      } else if (f->required) {
        error(in, p, "missing required key ({})", f->help);
      } else {
        out[f->key] = YAML::Load(f->default_yaml);
      }
    }
    return out;
  }

  const std::vector<std::string>& errors() const { return errors_; }

 private:
  template <class... Args>
  void error(const YAML::Node& at, const std::string& path, fmt::format_string<Args...> format, Args&&... args) {
    errors_.push_back(fmt::format("{}{}: {}", where(at, path), path, fmt::format(format, std::forward<Args>(args)...)));
  }

  std::string where(const YAML::Node& at, const std::string& path) const {
    for (const std::string& o : overridden_)
      if (path == o || path.rfind(o + ".", 0) == 0 || path.rfind(o + "[", 0) == 0 || o.rfind(path + ".", 0) == 0)
        return "--set ";
    if (at && !at.Mark().is_null()) return fmt::format("{}:{}:{}: ", origin_, at.Mark().line + 1, at.Mark().column + 1);
    return origin_ + ": ";
  }

  static std::string describe(const YAML::Node& n) {
    if (n.IsMap()) return "a section";
    if (n.IsSequence()) return "a list";
    if (n.IsNull()) return "nothing";
    return "'" + n.Scalar() + "'";
  }

  std::string type_of(const YAML::Node& in, const Field& schema, const std::string& path) {
    const auto type_field = std::find_if(schema.fields.begin(), schema.fields.end(), [](const Field& f) { return f.key == "type"; });
    const YAML::Node given = in && in.IsMap() ? in["type"] : YAML::Node();
    std::string type;
    if (given && given.IsScalar()) type = given.Scalar();
    else if (type_field != schema.fields.end() && !type_field->required) type = YAML::Load(type_field->default_yaml).as<std::string>();
    else return "";  // the field loop reports the missing or malformed type
    if (!schema.typed_fields(type)) {
      const std::vector<std::string> known = schema.type_names();
      const std::string near = nearest_key(type, known);
      error(given ? given : in, child_path(path, "type"), "unknown type '{}'{} (known: {})", type,
            near.empty() ? "" : " (did you mean " + near + "?)", join(known));
    }
    return type;
  }

  void unknown_key(const YAML::Node& at, const std::string& path, const std::string& key,
                   const std::vector<const Field*>& fields) {
    std::vector<std::string> keys;
    for (const Field* f : fields) keys.push_back(f->key);
    std::string hint = nearest_key(key, keys);
    if (!hint.empty()) {
      hint = child_path(path, hint);
    } else {
      // A valid key in the wrong section (train.lr for optim.lr) is a common slip.
      for (const Field& top : recipe_schema().fields)
        for (const Field& f : top.fields)
          if (f.key == key && top.key != path) hint = top.key + "." + key;
    }
    error(at, child_path(path, key), "unknown key{}", hint.empty() ? fmt::format(" (valid here: {})", join(keys))
                                                                       : " (did you mean " + hint + "?)");
  }

  YAML::Node scalar_or_list(const YAML::Node& value, const Field& f, const std::string& path) {
    const bool is_list = f.kind == Kind::integer_list || f.kind == Kind::number_list || f.kind == Kind::string_list;
    if (!is_list) {
      if (!value.IsScalar()) {
        error(value, path, "expected {}, got {}", kind_name(f.kind), describe(value));
        return YAML::Load(f.default_yaml);
      }
      return scalar(value, f.kind, f, path);
    }
    YAML::Node out(YAML::NodeType::Sequence);
    out.SetStyle(YAML::EmitterStyle::Flow);
    const Kind element = f.kind == Kind::integer_list ? Kind::integer : f.kind == Kind::number_list ? Kind::number : Kind::string;
    if (value.IsScalar()) {  // `--set model.hidden=512` means [512]
      out.push_back(scalar(value, element, f, path));
    } else if (value.IsSequence()) {
      for (size_t i = 0; i < value.size(); ++i) {
        if (!value[i].IsScalar()) error(value[i], fmt::format("{}[{}]", path, i), "expected {}, got {}", kind_name(element), describe(value[i]));
        else out.push_back(scalar(value[i], element, f, fmt::format("{}[{}]", path, i)));
      }
    } else {
      error(value, path, "expected a list of {}, got {}", kind_name(element), describe(value));
    }
    return out;
  }

  YAML::Node scalar(const YAML::Node& value, Kind kind, const Field& f, const std::string& path) {
    const std::string text = value.Scalar();
    switch (kind) {
      case Kind::integer: {
        double v;
        int64_t i;
        if (YAML::convert<int64_t>::decode(value, i)) v = double(i);
        else if (YAML::convert<double>::decode(value, v) && std::isfinite(v) && v == std::floor(v) && std::abs(v) < 9e15) i = int64_t(v);
        else {
          error(value, path, "expected an integer, got '{}'", text);
          return YAML::Node(0);
        }
        check_range(value, path, v, f);
        return YAML::Node(i);
      }
      case Kind::number: {
        double v;
        if (!YAML::convert<double>::decode(value, v) || !std::isfinite(v)) {
          error(value, path, "expected a finite number, got '{}'", text);
          return YAML::Node(0);
        }
        check_range(value, path, v, f);
        // The author's spelling (3e-4, not 0.00029999...), without the blanks yaml-cpp may leave
        // around it (a stray carriage return before a comment), which would not read back the same.
        const size_t first = text.find_first_not_of(" \t\r\n");
        return YAML::Node(text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1));
      }
      case Kind::boolean: {
        bool b;
        if (!YAML::convert<bool>::decode(value, b)) {
          error(value, path, "expected true or false, got '{}'", text);
          return YAML::Node(false);
        }
        return YAML::Node(b);
      }
      default: {
        if (!f.choices.empty() && std::find(f.choices.begin(), f.choices.end(), text) == f.choices.end()) {
          const std::string near = nearest_key(text, f.choices);
          error(value, path, "'{}' is not one of: {}{}", text, join(f.choices),
                near.empty() ? "" : " (did you mean " + near + "?)");
        }
        return YAML::Node(text);
      }
    }
  }

  void check_range(const YAML::Node& value, const std::string& path, double v, const Field& f) {
    if (v < f.min || v > f.max) {
      const std::string range = std::isinf(f.max) ? fmt::format("at least {}", f.min)
                                : std::isinf(f.min) ? fmt::format("at most {}", f.max)
                                                    : fmt::format("in [{}, {}]", f.min, f.max);
      error(value, path, "{} is out of range (must be {})", value.Scalar(), range);
    }
  }

  static const char* kind_name(Kind k) {
    switch (k) {
      case Kind::integer: return "an integer";
      case Kind::number: return "a number";
      case Kind::boolean: return "true or false";
      case Kind::string: return "a string";
      case Kind::integer_list: return "a list of integers";
      case Kind::number_list: return "a list of numbers";
      case Kind::string_list: return "a list of strings";
      case Kind::section: return "a section";
    }
    return "?";
  }

  std::string origin_;
  std::set<std::string> overridden_;
  std::vector<std::string> errors_;
};

// `a.b.c=value`: the value is parsed as YAML, so types come out as they would in the file.
std::string apply_override(YAML::Node& root, const std::string& assignment) {
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    fail("--set {}: expected key=value (for example --set optim.lr=3e-4)", assignment);
  const std::string path = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  std::vector<std::string> keys;
  std::stringstream ss(path);
  for (std::string k; std::getline(ss, k, '.');) {
    if (k.empty()) fail("--set {}: empty key in '{}'", assignment, path);
    keys.push_back(k);
  }
  YAML::Node value;
  try {
    value = YAML::Load(text);
  } catch (const YAML::Exception&) {
    value = YAML::Node(text);
  }
  if (!value || value.IsNull()) fail("--set {}: missing value after '='", assignment);
  YAML::Node node;
  node.reset(root);
  for (size_t i = 0; i + 1 < keys.size(); ++i) {
    if (!node[keys[i]] || !node[keys[i]].IsMap()) node[keys[i]] = YAML::Node(YAML::NodeType::Map);
    YAML::Node next = node[keys[i]];
    node.reset(next);
  }
  node[keys.back()] = value;
  return path;
}

// A key written twice in one map: YAML forbids it, yaml-cpp keeps both and reads the first, so a
// recipe's second `lr:` would be silently ignored. Refused naming both lines.
// Also bounds the nesting: an alias inside its own anchor ('a: &x [*x]') makes yaml-cpp build a
// cycle, which every walk of the tree would follow until the stack overflows.
void refuse_duplicate_keys(const YAML::Node& node, const std::string& origin, const std::string& path, int depth = 0) {
  constexpr int kMaxDepth = 32;  // recipes nest 4 levels
  if (depth > kMaxDepth)
    fail("{}:{}:{}: {}...: nested more than {} levels deep (an alias inside its own anchor?)", origin,
         node.Mark().line + 1, node.Mark().column + 1, path, kMaxDepth);
  const auto below = [&](const std::string& child) { return depth < 4 ? child : path; };  // keep messages short
  if (node.IsSequence())
    for (size_t i = 0; i < node.size(); ++i)
      refuse_duplicate_keys(node[i], origin, below(fmt::format("{}[{}]", path, i)), depth + 1);
  if (!node.IsMap()) return;
  std::map<std::string, YAML::Mark> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar())  // YAML allows '? [a, b]: 1' or an empty key; a recipe's keys are names
      fail("{}:{}:{}: {}a key must be a name, not {}", origin, it->first.Mark().line + 1, it->first.Mark().column + 1,
           path.empty() ? "" : path + ": ", it->first.IsMap() ? "a map" : it->first.IsSequence() ? "a list" : "empty");
    const std::string key = it->first.Scalar(), at = path.empty() ? key : path + "." + key;
    const auto [first, fresh] = seen.emplace(key, it->first.Mark());
    if (!fresh)
      fail("{}:{}:{}: {} is given twice (first on line {}); a key may appear once", origin, it->first.Mark().line + 1,
           it->first.Mark().column + 1, at, first->second.line + 1);
    refuse_duplicate_keys(it->second, origin, below(at), depth + 1);
  }
}

// A recipe is UTF-8 text; anything else (a binary file given by mistake) is named as such rather
// than reported by the YAML parser with the offending bytes echoed back.
void require_text(const std::string& text, const std::string& origin) {
  const size_t nul = text.find('\0');
  if (nul != std::string::npos)
    fail("{}:{}: not a text file (a zero byte at offset {}); a recipe is YAML text", origin,
         1 + std::count(text.begin(), text.begin() + long(nul), '\n'), nul);
  if (!data::valid_utf8(text)) fail("{}: not UTF-8 text; a recipe is YAML text (save it as UTF-8)", origin);
}

// Where each YAML document of a text starts, and nothing else.
class DocumentStarts : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> starts;
  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// A recipe is one YAML document. The documents are counted here, three at most, rather than with
// YAML::LoadAll: yaml-cpp 0.7 (Debian 12) loops for ever, allocating, on a token it cannot place
// (a lone ',': yaml-cpp issue 1040, fixed upstream in 2024 by pull request 1319), reporting the
// same empty document again and again. A document that starts where the one before it did is
// that token.
void require_one_document(const std::string& text, const std::string& origin) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentStarts documents;
  while (documents.starts.size() < 3 && parser.HandleNextDocument(documents)) {
  }
  const std::vector<YAML::Mark>& starts = documents.starts;
  for (size_t i = 1; i < starts.size(); ++i)
    if (starts[i].pos == starts[i - 1].pos)
      fail("{}:{}:{}: YAML syntax error: '{}' where a value was expected", origin, starts[i].line + 1,
           starts[i].column + 1, size_t(starts[i].pos) < text.size() ? text.substr(size_t(starts[i].pos), 1) : "");
  if (starts.size() > 1)
    fail("{}:{}: a second YAML document ('---') starts here; a recipe is one document", origin, starts[1].line + 1);
}

YAML::Node load_yaml(const std::string& text, const std::string& origin) {
  require_text(text, origin);
  try {
    require_one_document(text, origin);
    YAML::Node n = YAML::Load(text);
    if (n && !n.IsNull() && !n.IsMap()) fail("{}: a recipe must be a map of sections at the top level", origin);
    if (n) refuse_duplicate_keys(n, origin, "");
    return n && n.IsMap() ? n : YAML::Node(YAML::NodeType::Map);
  } catch (const YAML::Exception& e) {
    fail("{}:{}:{}: YAML syntax error: {}", origin, e.mark.line + 1, e.mark.column + 1, e.msg);
  }
}

void emit(YAML::Emitter& out, const YAML::Node& node) {
  if (node.IsMap()) {
    out << YAML::BeginMap;
    for (auto it = node.begin(); it != node.end(); ++it) {
      out << YAML::Key << it->first.Scalar() << YAML::Value;
      emit(out, it->second);
    }
    out << YAML::EndMap;
  } else if (node.IsSequence()) {
    out << YAML::Flow << YAML::BeginSeq;
    for (const auto& item : node) emit(out, item);
    out << YAML::EndSeq;
  } else {
    out << node;
  }
}

// A budget given on the command line replaces the recipe's: `--set train.steps=150` on a recipe that
// trains for epochs (or --set train.epochs on one that counts steps) drops the recipe's other one.
void replace_budget(YAML::Node& root, const std::set<std::string>& overridden) {
  const YAML::Node train = root["train"];
  if (!train || !train.IsMap()) return;
  auto positive = [&](const char* key) {
    try {
      return train[key] && train[key].as<double>() > 0;
    } catch (const YAML::Exception&) {
      return false;  // not a number: validation says so
    }
  };
  for (const auto& [given, other] : {std::pair{"steps", "epochs"}, std::pair{"epochs", "steps"}})
    if (overridden.count(std::string("train.") + given) && !overridden.count(std::string("train.") + other) &&
        positive(given) && train[other])
      root["train"][other] = 0;
}

}  // namespace

Recipe Recipe::parse(const std::string& text, const std::string& origin, const std::vector<std::string>& overrides) {
  YAML::Node root = load_yaml(text, origin);
  std::set<std::string> overridden;
  for (const std::string& o : overrides) overridden.insert(apply_override(root, o));
  replace_budget(root, overridden);
  Validator validator(origin, overridden);
  Recipe recipe;
  try {
    recipe.resolved_ = validator.section(root, recipe_schema(), "");
  } catch (const YAML::Exception& e) {  // the validator checks before it converts; this names the place if not
    fail("{}:{}:{}: {}", origin, e.mark.line + 1, e.mark.column + 1, e.msg);
  }
  if (!validator.errors().empty()) {
    std::string message = validator.errors().size() == 1 ? "" : fmt::format("{} problems in the recipe:\n  ", validator.errors().size());
    for (size_t i = 0; i < validator.errors().size(); ++i) message += (i ? "\n  " : "") + validator.errors()[i];
    throw Error(message);
  }
  recipe.name_ = std::filesystem::path(origin).stem().string();
  return recipe;
}

Recipe Recipe::load(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  if (!in) fail("cannot read recipe '{}': {}", path, std::filesystem::exists(path) ? "permission denied" : "no such file");
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str(), path, overrides);
}

std::string Recipe::text() const {
  YAML::Emitter out;
  emit(out, resolved_);
  return std::string(out.c_str()) + "\n";
}

}  // namespace tessera::train
