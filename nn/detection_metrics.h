#pragma once
// COCO-style average precision of detections, as pure functions of boxes, following pycocotools'
// COCOeval for boxes (area range "all", no crowd annotations); tests/nn/test_detection_metrics.cpp
// checks agreement with pycocotools to 1e-9.
//
// Per class, per IoU threshold t:
// - In each image, the class's detections are ranked by score (highest first; equal scores keep
//   their input order), the first max_detections_per_image kept, and each in turn is matched to the
//   still-unmatched ground truth of its image and class with the highest IoU, if that IoU >= t
//   (ties in IoU go to the later ground truth, as in pycocotools). A matched detection is a true
//   positive, any other a false positive.
// - All images' detections are then ranked together by score (equal scores: lower image index
//   first, then the per-image rank), precision and recall are taken after each one, precision is
//   made non-increasing from the right, and AP is the mean over the 101 recall points 0, 0.01, .., 1
//   of the precision at the first rank whose recall reaches the point (0 past the highest recall).
//   (Precision is tp / (tp + fp), without pycocotools' extra 2e-16 in the denominator, so perfect
//   detections score exactly 1; the difference is far below the tested 1e-9.)
// A class with ground truth and no detections has AP 0. A class without ground truth has no AP (its
// detections, all false, count nowhere) and is left out of the means; when no class has ground
// truth the means are NaN.
//
// Generated detections have no score: Detection::score defaults to 1, so all tie and the ranking
// is the order of the detections in the input (image by image, then output order).
#include <cstdint>
#include <vector>

namespace tessera::nn {

// Pixel edges, half-open: rows [y_min, y_max), columns [x_min, x_max) (docs/DATA.md's order).
struct Box {
  double y_min = 0, x_min = 0, y_max = 0, x_max = 0;
};

// Intersection over union of two half-open boxes: areas are (y_max - y_min) * (x_max - x_min), no
// "+1" (so a 1-pixel box [3, 4) has area 1, as in modern pycocotools). 0 when they do not overlap.
double box_iou(const Box& a, const Box& b);

struct GroundTruthBox {
  int64_t image = 0;
  int64_t class_id = 0;
  Box box;
};

struct DetectedBox {
  int64_t image = 0;
  int64_t class_id = 0;
  Box box;
  double score = 1;
};

struct DetectionOptions {
  int64_t max_detections_per_image = 100;  // per class, as COCO's maxDets=100
};

// The ten COCO thresholds 0.5, 0.55, .., 0.95, computed as numpy.linspace computes them (so an IoU
// landing exactly on a threshold is judged as pycocotools judges it).
std::vector<double> coco_iou_thresholds();

struct AveragePrecision {
  std::vector<double> iou_thresholds;         // coco_iou_thresholds()
  std::vector<bool> has_ground_truth;         // per class
  std::vector<std::vector<double>> per_class; // [class][threshold]; empty for a class without ground truth
  double map50 = 0;                           // mean over classes with ground truth of AP at IoU 0.5
  double map = 0;                             // mean over those classes of AP averaged over the thresholds
};

// Classes are 0 .. num_classes-1; images are any integers. Boxes of other classes are refused.
AveragePrecision average_precision(const std::vector<DetectedBox>& detections,
                                   const std::vector<GroundTruthBox>& ground_truth, int64_t num_classes,
                                   const DetectionOptions& options = {});

}  // namespace tessera::nn
