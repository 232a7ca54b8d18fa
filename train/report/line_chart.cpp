#include "train/report/line_chart.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "train/report/html_page.h"

namespace tessera::train {

namespace {

constexpr int kLeft = 58, kRight = 10, kTop = 24, kBottom = 30;
const char* kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"};

// About five round tick values covering [lo, hi].
std::vector<double> ticks(double lo, double hi) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / 5, magnitude = std::pow(10, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * magnitude) { step = m * magnitude; break; }
  std::vector<double> out;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push_back(std::abs(t) < step * 1e-9 ? 0 : t);
  return out;
}

std::string label(double v) {
  const double a = std::abs(v);
  if (a != 0 && (a >= 1e5 || a < 1e-3)) return fmt::format("{:.0e}", v);
  return fmt::format("{:.4g}", v);
}

struct Frame {
  double x0, x1, y0, y1;
  bool log_y;
  int width, height;
  double px(double x) const { return kLeft + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * (width - kLeft - kRight); }
  double py(double y) const {
    const double v = log_y ? std::log10(y) : y, lo = log_y ? std::log10(y0) : y0, hi = log_y ? std::log10(y1) : y1;
    return height - kBottom - (hi > lo ? (v - lo) / (hi - lo) : 0.5) * (height - kTop - kBottom);
  }
};

std::string axes(const Frame& f, const std::string& title) {
  std::string svg = fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-size=\"10\" "
                                "font-family=\"sans-serif\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>"
                                "<text x=\"{}\" y=\"14\" font-size=\"12\" font-weight=\"600\">{}</text>",
                                f.width, f.height, kLeft, html_escape(title));
  std::vector<double> ys;
  if (f.log_y) {
    // Powers of ten; with fewer than three in range, also 2 and 5 times them.
    for (const std::vector<double>& mantissas : {std::vector<double>{1}, std::vector<double>{1, 2, 5}}) {
      ys.clear();
      for (double e = std::floor(std::log10(f.y0)); e <= std::ceil(std::log10(f.y1)); ++e)
        for (double m : mantissas)
          if (const double t = m * std::pow(10, e); t >= f.y0 * (1 - 1e-9) && t <= f.y1 * (1 + 1e-9)) ys.push_back(t);
      if (ys.size() >= 3) break;
    }
    if (ys.size() < 2) ys = {f.y0, f.y1};
  } else {
    ys = ticks(f.y0, f.y1);
  }
  for (double t : ys)
    svg += fmt::format("<line x1=\"{}\" x2=\"{}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#eee\"/><text x=\"{}\" y=\"{:.1f}\" "
                       "text-anchor=\"end\">{}</text>", kLeft, f.width - kRight, f.py(t), f.py(t), kLeft - 4, f.py(t) + 3,
                       label(t));
  for (double t : ticks(f.x0, f.x1))
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>", f.px(t), f.height - kBottom + 14,
                       label(t));
  svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>", kLeft, kTop,
                     f.width - kLeft - kRight, f.height - kTop - kBottom);
  if (f.log_y) svg += fmt::format("<text x=\"{}\" y=\"{}\" fill=\"#888\">log scale</text>", f.width - kRight - 50, kTop - 4);
  return svg;
}

}  // namespace

std::string line_chart_svg(const std::string& title, const std::vector<ChartSeries>& series, YScale scale, int width,
                           int height) {
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  bool all_positive = true;
  for (const ChartSeries& s : series)
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
        x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]), y0 = std::min(y0, s.y[i]), y1 = std::max(y1, s.y[i]);
        all_positive = all_positive && s.y[i] > 0;
      }
  if (!std::isfinite(x0)) return "";
  const bool log_y = all_positive && (scale == YScale::log || (scale == YScale::automatic && y1 > 10 * y0));
  if (!log_y) {
    const double pad = y1 > y0 ? 0.05 * (y1 - y0) : std::max(1e-9, std::abs(y0) * 0.05 + 1e-9);
    y0 -= pad, y1 += pad;
  }
  const Frame f{x0, x1, y0, y1, log_y, width, height};
  std::string svg = axes(f, title);
  for (size_t k = 0; k < series.size(); ++k) {
    const ChartSeries& s = series[k];
    std::vector<std::pair<double, double>> points;
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i]) && (!log_y || s.y[i] > 0)) points.emplace_back(f.px(s.x[i]), f.py(s.y[i]));
    const char* colour = kColours[k % 6];
    if (points.size() == 1) {  // one evaluation: a dot
      svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>", points[0].first, points[0].second, colour);
    } else if (!points.empty()) {
      std::string list;
      for (const auto& [x, y] : points) list += fmt::format("{:.1f},{:.1f} ", x, y);
      svg += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>", colour, list);
      if (points.size() <= 24)  // few points (evaluations): mark each
        for (const auto& [x, y] : points) svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\" fill=\"{}\"/>", x, y, colour);
    }
    if (series.size() > 1)
      svg += fmt::format("<text x=\"{}\" y=\"{}\" fill=\"{}\">{}</text>", kLeft + 6, kTop + 12 + 12 * int(k), colour,
                         html_escape(s.name));
  }
  return svg + "</svg>";
}

std::string bar_chart_svg(const std::string& title, const std::vector<double>& values, bool log_y, int width, int height) {
  if (values.empty()) return "";
  double top = 0, low = std::numeric_limits<double>::infinity();
  for (double v : values)
    if (std::isfinite(v)) top = std::max(top, v), low = v > 0 ? std::min(low, v) : low;
  if (!(top > 0)) top = 1;
  log_y = log_y && std::isfinite(low) && top > 10 * low;
  const Frame f{0, double(values.size()), log_y ? std::max(low / 2, 1e-12) : 0, top, log_y, width, height};
  std::string svg = axes(f, title);
  const double w = double(width - kLeft - kRight) / double(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    if (!(values[i] > 0)) continue;
    const double y = f.py(values[i]), base = f.py(f.y0);
    svg += fmt::format("<rect x=\"{:.2f}\" y=\"{:.1f}\" width=\"{:.2f}\" height=\"{:.1f}\" fill=\"#1f77b4\"/>",
                       f.px(double(i)), y, std::max(0.5, w * 0.9), std::max(0.0, base - y));
  }
  return svg + "</svg>";
}

}  // namespace tessera::train
