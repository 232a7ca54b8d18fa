#include "nn/detection_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <utility>

#include "autograd/error.h"

namespace tessera::nn {

double box_iou(const Box& a, const Box& b) {
  const double h = std::min(a.y_max, b.y_max) - std::max(a.y_min, b.y_min);
  const double w = std::min(a.x_max, b.x_max) - std::max(a.x_min, b.x_min);
  if (h <= 0 || w <= 0) return 0;  // also keeps two empty boxes from dividing 0 by 0
  const double intersection = h * w;
  const double area_a = (a.y_max - a.y_min) * (a.x_max - a.x_min);
  const double area_b = (b.y_max - b.y_min) * (b.x_max - b.x_min);
  return intersection / (area_a + area_b - intersection);
}

// numpy.linspace(start, stop, n): start + i * step with step = (stop - start) / (n - 1), the last
// point exactly stop. Spelled out so thresholds equal pycocotools' to the last bit.
static std::vector<double> linspace(double start, double stop, int n) {
  std::vector<double> points(n);
  const double step = (stop - start) / (n - 1);
  for (int i = 0; i < n; ++i) points[i] = i * step + start;
  points[n - 1] = stop;
  return points;
}

std::vector<double> coco_iou_thresholds() { return linspace(0.5, 0.95, 10); }

namespace {

// One class in one image: its detections in rank order (already cut to the per-image limit) and
// its ground truth in input order.
struct ImageClass {
  std::vector<const DetectedBox*> detections;
  std::vector<const Box*> ground_truth;
};

// Which detections of an image/class are true positives at IoU >= threshold (pycocotools'
// evaluateImg for non-crowd boxes): each detection in rank order takes the unmatched ground truth
// of highest IoU; ties go to the later ground truth because the comparison is >=.
std::vector<bool> match(const ImageClass& cell, const std::vector<std::vector<double>>& iou, double threshold) {
  std::vector<bool> matched_gt(cell.ground_truth.size(), false), true_positive(cell.detections.size(), false);
  for (size_t d = 0; d < cell.detections.size(); ++d) {
    double best = std::min(threshold, 1 - 1e-10);  // so IoU 1 still matches at a threshold of 1
    int64_t chosen = -1;
    for (size_t g = 0; g < cell.ground_truth.size(); ++g) {
      if (matched_gt[g] || iou[d][g] < best) continue;
      best = iou[d][g];
      chosen = static_cast<int64_t>(g);
    }
    if (chosen < 0) continue;
    matched_gt[chosen] = true;
    true_positive[d] = true;
  }
  return true_positive;
}

// 101-point interpolated AP of one ranked list of hits (pycocotools' accumulate).
double interpolated_ap(const std::vector<bool>& ranked_hits, int64_t ground_truth_count) {
  const size_t n = ranked_hits.size();
  std::vector<double> precision(n), recall(n);
  double tp = 0, fp = 0;
  for (size_t i = 0; i < n; ++i) {
    (ranked_hits[i] ? tp : fp) += 1;
    recall[i] = tp / static_cast<double>(ground_truth_count);
    // pycocotools adds np.spacing(1) to the denominator, which only keeps a perfect AP 2e-16 short
    // of 1; the denominator is >= 1 here, so there is nothing to guard against.
    precision[i] = tp / (fp + tp);
  }
  for (size_t i = n; i-- > 1;) precision[i - 1] = std::max(precision[i - 1], precision[i]);
  double sum = 0;
  for (double point : linspace(0, 1, 101)) {
    const size_t rank = std::lower_bound(recall.begin(), recall.end(), point) - recall.begin();
    if (rank < n) sum += precision[rank];  // past the highest recall: precision 0
  }
  return sum / 101;
}

std::vector<const DetectedBox*> ranked_by_score(std::vector<const DetectedBox*> detections) {
  std::stable_sort(detections.begin(), detections.end(),
                   [](const DetectedBox* a, const DetectedBox* b) { return a->score > b->score; });
  return detections;
}

// AP of one class at every threshold; its cells are keyed by image, so they iterate in image order.
std::vector<double> class_average_precision(const std::map<int64_t, ImageClass>& cells,
                                            const std::vector<double>& thresholds) {
  int64_t ground_truth_count = 0;
  std::vector<std::vector<std::vector<double>>> ious;  // per cell: [detection][ground truth]
  for (const auto& [image, cell] : cells) {
    ground_truth_count += static_cast<int64_t>(cell.ground_truth.size());
    auto& iou = ious.emplace_back(cell.detections.size(), std::vector<double>(cell.ground_truth.size()));
    for (size_t d = 0; d < cell.detections.size(); ++d)
      for (size_t g = 0; g < cell.ground_truth.size(); ++g) iou[d][g] = box_iou(cell.detections[d]->box, *cell.ground_truth[g]);
  }
  std::vector<double> ap;
  for (double threshold : thresholds) {
    // All images' detections with their hit flags, concatenated in image order, then ranked.
    std::vector<std::pair<double, bool>> scored;
    size_t index = 0;
    for (const auto& [image, cell] : cells) {
      const std::vector<bool> hits = match(cell, ious[index++], threshold);
      for (size_t d = 0; d < hits.size(); ++d) scored.emplace_back(cell.detections[d]->score, hits[d]);
    }
    std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    std::vector<bool> ranked_hits(scored.size());
    for (size_t i = 0; i < scored.size(); ++i) ranked_hits[i] = scored[i].second;
    ap.push_back(interpolated_ap(ranked_hits, ground_truth_count));
  }
  return ap;
}

double mean_or_nan(const std::vector<double>& values) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

}  // namespace

AveragePrecision average_precision(const std::vector<DetectedBox>& detections,
                                   const std::vector<GroundTruthBox>& ground_truth, int64_t num_classes,
                                   const DetectionOptions& options) {
  if (num_classes < 0) fail("average_precision: num_classes must be >= 0, got {}", num_classes);
  if (options.max_detections_per_image < 1)
    fail("average_precision: max_detections_per_image must be >= 1, got {}", options.max_detections_per_image);
  auto check_class = [&](int64_t c, const char* what) {
    if (c < 0 || c >= num_classes) fail("average_precision: a {} has class {}, outside 0..{}", what, c, num_classes - 1);
  };

  // cells[class][image]; detections gathered in input order, ranked below.
  std::vector<std::map<int64_t, ImageClass>> cells(num_classes);
  for (const GroundTruthBox& g : ground_truth) {
    check_class(g.class_id, "ground-truth box");
    cells[g.class_id][g.image].ground_truth.push_back(&g.box);
  }
  for (const DetectedBox& d : detections) {
    check_class(d.class_id, "detection");
    cells[d.class_id][d.image].detections.push_back(&d);
  }
  for (auto& per_image : cells)
    for (auto& [image, cell] : per_image) {
      cell.detections = ranked_by_score(std::move(cell.detections));
      if (static_cast<int64_t>(cell.detections.size()) > options.max_detections_per_image)
        cell.detections.resize(options.max_detections_per_image);
    }

  AveragePrecision result;
  result.iou_thresholds = coco_iou_thresholds();
  result.has_ground_truth.assign(num_classes, false);
  result.per_class.resize(num_classes);
  std::vector<double> at_50, over_thresholds;
  for (int64_t c = 0; c < num_classes; ++c) {
    const bool has_ground_truth =
        std::any_of(cells[c].begin(), cells[c].end(), [](const auto& cell) { return !cell.second.ground_truth.empty(); });
    if (!has_ground_truth) continue;
    result.has_ground_truth[c] = true;
    result.per_class[c] = class_average_precision(cells[c], result.iou_thresholds);
    at_50.push_back(result.per_class[c].front());  // the first threshold is exactly 0.5
    over_thresholds.push_back(mean_or_nan(result.per_class[c]));
  }
  result.map50 = mean_or_nan(at_50);
  result.map = mean_or_nan(over_thresholds);
  return result;
}

}  // namespace tessera::nn
