#pragma once
// Line charts as inline SVG for run reports: one or more series over steps, axes with rounded
// ticks, a logarithmic y axis where it helps (positive values spanning more than a decade).
#include <string>
#include <vector>

namespace tessera::train {

struct ChartSeries {
  std::string name;
  std::vector<double> x, y;  // non-finite values are skipped
};

enum class YScale { linear, log, automatic };

// An SVG element `width` x `height` pixels; empty when no series has a finite point.
std::string line_chart_svg(const std::string& title, const std::vector<ChartSeries>& series, YScale scale = YScale::automatic,
                           int width = 380, int height = 230);

// Bars of `values` in order (a codebook's usage sorted by count, ...), as SVG.
std::string bar_chart_svg(const std::string& title, const std::vector<double>& values, bool log_y, int width = 760,
                          int height = 230);

}  // namespace tessera::train
