#include "train/json_value.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <unordered_set>

#include "autograd/error.h"

namespace tessera::train {

namespace {
constexpr int kMaxDepth = 64;  // safetensors headers and metrics lines nest two or three deep

const char* kind_name(JsonValue::Kind k) {
  switch (k) {
    case JsonValue::Kind::null: return "null";
    case JsonValue::Kind::boolean: return "a boolean";
    case JsonValue::Kind::number: return "a number";
    case JsonValue::Kind::string: return "a string";
    case JsonValue::Kind::array: return "an array";
    case JsonValue::Kind::object: return "an object";
  }
  return "?";
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6)), out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12)), out += char(0x80 | ((cp >> 6) & 0x3F)), out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18)), out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F)), out += char(0x80 | (cp & 0x3F));
  }
}
}  // namespace

class JsonParser {
 public:
  JsonParser(const std::string& text, const std::string& source) : s_(text), source_(source) {}

  JsonValue document() {
    JsonValue v = value(0);
    skip_space();
    if (at_ != s_.size()) error("unexpected text after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void error(const std::string& what) const {
    fail("{}: invalid JSON at byte {}: {}", source_, at_, what);
  }

  void skip_space() {
    while (at_ < s_.size() && (s_[at_] == ' ' || s_[at_] == '\t' || s_[at_] == '\n' || s_[at_] == '\r')) ++at_;
  }

  bool take(const char* word) {
    const std::string w(word);
    if (s_.compare(at_, w.size(), w) != 0) return false;
    at_ += w.size();
    return true;
  }

  JsonValue value(int depth) {
    if (depth > kMaxDepth) error(fmt::format("nested deeper than {} levels", kMaxDepth));
    skip_space();
    if (at_ >= s_.size()) error("the text ends where a value should be");
    JsonValue v;
    const char c = s_[at_];
    if (c == '{') {
      v.kind_ = JsonValue::Kind::object;
      ++at_;
      skip_space();
      if (at_ < s_.size() && s_[at_] == '}') return ++at_, v;
      std::unordered_set<std::string> keys;
      while (true) {
        skip_space();
        if (at_ >= s_.size() || s_[at_] != '"') error("expected a quoted key");
        std::string key = string_literal();
        if (!keys.insert(key).second) error(fmt::format("the key \"{}\" appears twice", key));
        skip_space();
        if (at_ >= s_.size() || s_[at_] != ':') error("expected ':' after a key");
        ++at_;
        v.object_.emplace_back(std::move(key), value(depth + 1));
        skip_space();
        if (at_ < s_.size() && s_[at_] == ',') { ++at_; continue; }
        if (at_ < s_.size() && s_[at_] == '}') return ++at_, v;
        error("expected ',' or '}' in an object");
      }
    }
    if (c == '[') {
      v.kind_ = JsonValue::Kind::array;
      ++at_;
      skip_space();
      if (at_ < s_.size() && s_[at_] == ']') return ++at_, v;
      while (true) {
        v.array_.push_back(value(depth + 1));
        skip_space();
        if (at_ < s_.size() && s_[at_] == ',') { ++at_; continue; }
        if (at_ < s_.size() && s_[at_] == ']') return ++at_, v;
        error("expected ',' or ']' in an array");
      }
    }
    if (c == '"') {
      v.kind_ = JsonValue::Kind::string;
      v.string_ = string_literal();
      return v;
    }
    if (take("true")) return v.kind_ = JsonValue::Kind::boolean, v.bool_ = true, v;
    if (take("false")) return v.kind_ = JsonValue::Kind::boolean, v;
    if (take("null")) return v;
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    error(fmt::format("unexpected character '{}'", c));
  }

  JsonValue number() {
    const size_t start = at_;
    bool integral = true;
    if (s_[at_] == '-') ++at_;
    const auto digits = [&] {
      const size_t from = at_;
      while (at_ < s_.size() && s_[at_] >= '0' && s_[at_] <= '9') ++at_;
      if (at_ == from) error("a number needs digits");
    };
    if (at_ < s_.size() && s_[at_] == '0') ++at_;  // no leading zeros
    else digits();
    if (at_ < s_.size() && s_[at_] == '.') ++at_, digits(), integral = false;
    if (at_ < s_.size() && (s_[at_] == 'e' || s_[at_] == 'E')) {
      ++at_, integral = false;
      if (at_ < s_.size() && (s_[at_] == '+' || s_[at_] == '-')) ++at_;
      digits();
    }
    JsonValue v;
    v.kind_ = JsonValue::Kind::number;
    const std::string literal = s_.substr(start, at_ - start);
    v.number_ = std::strtod(literal.c_str(), nullptr);
    if (integral) {
      const auto r = std::from_chars(literal.data(), literal.data() + literal.size(), v.integer_);
      v.integral_ = r.ec == std::errc();
    }
    return v;
  }

  uint32_t hex4() {
    if (at_ + 4 > s_.size()) error("a \\u escape needs four hex digits");
    uint32_t cp = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = s_[at_++];
      cp <<= 4;
      if (h >= '0' && h <= '9') cp |= uint32_t(h - '0');
      else if (h >= 'a' && h <= 'f') cp |= uint32_t(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') cp |= uint32_t(h - 'A' + 10);
      else error("a \\u escape needs four hex digits");
    }
    return cp;
  }

  std::string string_literal() {
    ++at_;  // the opening quote
    std::string out;
    while (true) {
      if (at_ >= s_.size()) error("a string is not closed");
      const auto c = static_cast<unsigned char>(s_[at_]);
      if (c == '"') return ++at_, out;
      if (c < 0x20) error("a control character inside a string");
      if (c != '\\') {
        out += char(c), ++at_;
        continue;
      }
      if (++at_ >= s_.size()) error("a string ends in a backslash");
      const char e = s_[at_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {  // a surrogate pair
            if (!take("\\u")) error("a lone high surrogate in a \\u escape");
            const uint32_t low = hex4();
            if (low < 0xDC00 || low >= 0xE000) error("a high surrogate without its low half");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            error("a lone low surrogate in a \\u escape");
          }
          append_utf8(out, cp);
          break;
        }
        default: error(fmt::format("unknown escape '\\{}'", e));
      }
    }
  }

  const std::string& s_;
  const std::string& source_;
  size_t at_ = 0;
};

JsonValue JsonValue::parse(const std::string& text, const std::string& source) {
  return JsonParser(text, source).document();
}

namespace {
[[noreturn]] void wrong_kind(const std::string& what, const char* wanted, JsonValue::Kind got) {
  fail("{} should be {}, but is {}", what, wanted, kind_name(got));
}
}  // namespace

bool JsonValue::as_bool(const std::string& what) const {
  if (kind_ != Kind::boolean) wrong_kind(what, "a boolean", kind_);
  return bool_;
}

double JsonValue::as_number(const std::string& what) const {
  if (kind_ != Kind::number) wrong_kind(what, "a number", kind_);
  return number_;
}

int64_t JsonValue::as_integer(const std::string& what, int64_t min, int64_t max) const {
  if (kind_ != Kind::number) wrong_kind(what, "an integer", kind_);
  if (!integral_) fail("{} should be a whole number, but is {}", what, number_);
  if (integer_ < min || integer_ > max) fail("{} is {}, outside [{}, {}]", what, integer_, min, max);
  return integer_;
}

const std::string& JsonValue::as_string(const std::string& what) const {
  if (kind_ != Kind::string) wrong_kind(what, "a string", kind_);
  return string_;
}

const std::vector<JsonValue>& JsonValue::as_array(const std::string& what) const {
  if (kind_ != Kind::array) wrong_kind(what, "an array", kind_);
  return array_;
}

const std::vector<std::pair<std::string, JsonValue>>& JsonValue::as_object(const std::string& what) const {
  if (kind_ != Kind::object) wrong_kind(what, "an object", kind_);
  return object_;
}

const JsonValue* JsonValue::find(const std::string& key) const {
  for (const auto& [k, v] : object_)
    if (k == key) return &v;
  return nullptr;
}

}  // namespace tessera::train
