#pragma once
// A self-contained HTML page: text escaped, images inlined as data: URIs, charts inline as SVG,
// one small style sheet, no script and nothing fetched — it opens from disk, offline, anywhere.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tessera::train {

std::string html_escape(const std::string& text);
std::string base64(const std::string& bytes);

// Colour of a value in [0, 1] on a white-to-blue scale (heat maps, tables).
std::string heat_colour(double t);

class HtmlPage {
 public:
  explicit HtmlPage(std::string title);

  // A section with an anchor `id` (the table of contents links it; tests look for it).
  void section(const std::string& id, const std::string& title);
  void paragraph(const std::string& text);  // escaped
  void preformatted(const std::string& text);
  void raw(const std::string& html);         // trusted markup made here (SVG charts, tables)
  // A PNG (its bytes) shown `zoom` times its size with sharp pixels, with a caption under it.
  void png(const std::string& png_bytes, int zoom, const std::string& caption);
  // A matrix as a table of coloured cells: rows x columns values, each cell coloured by value /
  // max (or by `scale` when > 0) and printed with `format` ("{:.0f}", "{:.2f}").
  void heat_table(const std::vector<std::string>& row_names, const std::vector<std::string>& column_names,
                  const std::vector<std::vector<double>>& values, const std::string& corner, double scale = 0,
                  int decimals = 0);

  std::string str() const;

 private:
  std::string title_, body_;
  std::vector<std::pair<std::string, std::string>> contents_;  // id, title
};

}  // namespace tessera::train
