#include "train/report/html_page.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace tessera::train {

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string base64(const std::string& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8 | uint8_t(bytes[i + 2]);
    out += table[v >> 18], out += table[(v >> 12) & 63], out += table[(v >> 6) & 63], out += table[v & 63];
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    out += table[v >> 18], out += table[(v >> 12) & 63], out += "==";
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += table[v >> 18], out += table[(v >> 12) & 63], out += table[(v >> 6) & 63], out += '=';
  }
  return out;
}

std::string heat_colour(double t) {
  t = std::isfinite(t) ? std::clamp(t, 0.0, 1.0) : 0.0;
  const auto mix = [t](int a, int b) { return int(std::lround(a + (b - a) * t)); };
  return fmt::format("rgb({},{},{})", mix(255, 31), mix(255, 94), mix(255, 178));
}

HtmlPage::HtmlPage(std::string title) : title_(std::move(title)) {}

void HtmlPage::section(const std::string& id, const std::string& title) {
  if (!contents_.empty()) body_ += "</section>\n";
  contents_.emplace_back(id, title);
  body_ += fmt::format("<section id=\"{}\"><h2>{}</h2>\n", html_escape(id), html_escape(title));
}

void HtmlPage::paragraph(const std::string& text) { body_ += "<p>" + html_escape(text) + "</p>\n"; }

void HtmlPage::preformatted(const std::string& text) { body_ += "<pre>" + html_escape(text) + "</pre>\n"; }

void HtmlPage::raw(const std::string& html) { body_ += html + "\n"; }

void HtmlPage::png(const std::string& png_bytes, int zoom, const std::string& caption) {
  // Width and height from the IHDR chunk, which a PNG holds at bytes 16..23 (big-endian).
  const auto be32 = [&](size_t at) {
    uint32_t v = 0;
    for (size_t i = 0; i < 4; ++i) v = v << 8 | (at + i < png_bytes.size() ? uint8_t(png_bytes[at + i]) : 0);
    return int64_t(v);
  };
  const int64_t width = be32(16), height = be32(20);
  body_ += fmt::format("<figure><img class=\"px\" width=\"{}\" height=\"{}\" alt=\"{}\" src=\"data:image/png;base64,{}\">"
                       "<figcaption>{}</figcaption></figure>\n",
                       width * zoom, height * zoom, html_escape(caption), base64(png_bytes), html_escape(caption));
}

void HtmlPage::heat_table(const std::vector<std::string>& row_names, const std::vector<std::string>& column_names,
                          const std::vector<std::vector<double>>& values, const std::string& corner, double scale,
                          int decimals) {
  double top = scale;
  if (top <= 0)
    for (const auto& row : values)
      for (double v : row) top = std::max(top, std::isfinite(v) ? v : 0.0);
  std::string html = "<table class=\"heat\"><tr><th>" + html_escape(corner) + "</th>";
  for (const std::string& c : column_names) html += "<th>" + html_escape(c) + "</th>";
  html += "</tr>\n";
  for (size_t r = 0; r < values.size(); ++r) {
    html += "<tr><th>" + html_escape(r < row_names.size() ? row_names[r] : std::to_string(r)) + "</th>";
    for (double v : values[r]) {
      const double t = top > 0 ? v / top : 0;
      html += fmt::format("<td style=\"background:{};color:{}\">{:.{}f}</td>", heat_colour(t), t > 0.6 ? "#fff" : "#000",
                          v, decimals);
    }
    html += "</tr>\n";
  }
  body_ += html + "</table>\n";
}

std::string HtmlPage::str() const {
  std::string toc = "<nav><ul>";
  for (const auto& [id, title] : contents_) toc += fmt::format("<li><a href=\"#{}\">{}</a></li>", html_escape(id), html_escape(title));
  toc += "</ul></nav>\n";
  const std::string body = body_ + (contents_.empty() ? "" : "</section>\n");
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + html_escape(title_) +
         "</title>\n<style>\n"
         "body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1200px;padding:0 16px;color:#222}\n"
         "h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}\n"
         "nav ul{display:flex;flex-wrap:wrap;gap:4px 14px;padding:0;list-style:none}\n"
         "pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:12px;max-height:420px}\n"
         "figure{display:inline-block;margin:6px 12px 12px 0;vertical-align:top}\n"
         "figcaption{font-size:12px;color:#555;max-width:640px}\n"
         "img.px{image-rendering:pixelated;image-rendering:crisp-edges;border:1px solid #ccc}\n"
         "table.heat{border-collapse:collapse;font-size:11px;margin:8px 0}\n"
         "table.heat td,table.heat th{border:1px solid #ddd;padding:2px 5px;text-align:right}\n"
         "table.heat th{background:#fafafa;font-weight:600;text-align:left}\n"
         "table.text{border-collapse:collapse;font-size:12px;margin:8px 0}\n"
         "table.text td,table.text th{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}\n"
         ".charts{display:flex;flex-wrap:wrap;gap:8px}\n"
         "</style></head><body>\n<h1>" + html_escape(title_) + "</h1>\n" + toc + body + "</body></html>\n";
}

}  // namespace tessera::train
