#pragma once
// A flat JSON object writer for metrics.jsonl lines and `--json` output. Keys keep their order;
// non-finite numbers become null (JSON has no NaN).
#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <string>

namespace tessera::train {

class JsonObject {
 public:
  JsonObject& add(const std::string& key, double value) {
    return raw(key, std::isfinite(value) ? fmt::format("{}", value) : "null");
  }
  JsonObject& add(const std::string& key, int64_t value) { return raw(key, std::to_string(value)); }
  JsonObject& add(const std::string& key, int value) { return add(key, int64_t(value)); }
  JsonObject& add(const std::string& key, const std::string& value) { return raw(key, quote(value)); }
  JsonObject& add(const std::string& key, const char* value) { return add(key, std::string(value)); }
  // A value that already is JSON text (an array, a nested object).
  JsonObject& add_json(const std::string& key, const std::string& json) { return raw(key, json); }
  std::string str() const { return "{" + body_ + "}"; }

  static std::string quote(const std::string& s) {
    std::string out = "\"";
    for (const unsigned char c : s) {
      if (c == '"' || c == '\\') out += '\\', out += char(c);
      else if (c == '\n') out += "\\n";
      else if (c == '\t') out += "\\t";
      else if (c < 0x20) out += fmt::format("\\u{:04x}", int(c));
      else out += char(c);
    }
    return out + "\"";
  }

 private:
  JsonObject& raw(const std::string& key, const std::string& value) {
    body_ += (body_.empty() ? "" : ", ") + quote(key) + ": " + value;
    return *this;
  }
  std::string body_;
};

}  // namespace tessera::train
