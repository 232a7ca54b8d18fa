#pragma once
// Reading JSON (train/json.h writes it): a safetensors header, a line of metrics.jsonl. A small
// strict parser — RFC 8259, UTF-8 in and out, nesting bounded so that no file can exhaust the
// stack — whose errors name the source and the byte offset at fault.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace tessera::train {

class JsonValue {
 public:
  enum class Kind { null, boolean, number, string, array, object };

  // `source` names the text in messages ("model.safetensors (header)").
  static JsonValue parse(const std::string& text, const std::string& source);

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::null; }
  bool is_number() const { return kind_ == Kind::number; }
  bool is_string() const { return kind_ == Kind::string; }
  bool is_array() const { return kind_ == Kind::array; }
  bool is_object() const { return kind_ == Kind::object; }

  // Typed reads; each throws naming `what` when the value is of another kind.
  bool as_bool(const std::string& what) const;
  double as_number(const std::string& what) const;
  // A number that is a whole value in [min, max], without rounding.
  int64_t as_integer(const std::string& what, int64_t min, int64_t max) const;
  const std::string& as_string(const std::string& what) const;
  const std::vector<JsonValue>& as_array(const std::string& what) const;
  // Members in file order (duplicate keys are refused by parse).
  const std::vector<std::pair<std::string, JsonValue>>& as_object(const std::string& what) const;

  // The member `key` of an object, or nullptr.
  const JsonValue* find(const std::string& key) const;

 private:
  friend class JsonParser;
  Kind kind_ = Kind::null;
  bool bool_ = false;
  double number_ = 0;
  bool integral_ = false;  // written without fraction or exponent, and fits int64: integer_ is exact
  int64_t integer_ = 0;
  std::string string_;
  std::vector<JsonValue> array_;
  std::vector<std::pair<std::string, JsonValue>> object_;
};

}  // namespace tessera::train
