// Detection as location tokens and its COCO-style average precision: box IoU of half-open boxes,
// the bin round trip, format/parse round trips and every kind of malformed segment, hand-made AP
// cases whose values follow from the definition, and agreement with pycocotools (values from
// bench/detection_metrics_reference.py) on pseudo-random sets.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "autograd/error.h"
#include "nn/detection_metrics.h"
#include "nn/location_tokens.h"

using namespace tessera;
using namespace tessera::nn;

namespace {

const std::vector<std::string> kClasses = {"bag", "sneaker", "ankle boot"};

GroundTruthBox truth(int64_t image, int64_t cls, Box box) { return {image, cls, box}; }
DetectedBox detection(int64_t image, int64_t cls, Box box, double score = 1) { return {image, cls, box, score}; }

// AP of a class from its ranked hits, by the 101-point definition written out independently:
// precision at recall point r is the best precision at any rank whose recall is >= r.
double ap_by_definition(const std::vector<bool>& hits, int64_t ground_truth) {
  double sum = 0;
  for (int i = 0; i <= 100; ++i) {
    const double r = i / 100.0;
    double best = 0, tp = 0;
    for (size_t k = 0; k < hits.size(); ++k) {
      tp += hits[k];
      if (tp / ground_truth >= r - 1e-12) best = std::max(best, tp / (k + 1));
    }
    sum += best;
  }
  return sum / 101;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(detection_metrics)

BOOST_AUTO_TEST_CASE(box_iou_of_half_open_pixel_boxes) {
  // [0, 2) x [0, 2) and [1, 3) x [1, 3) share one pixel out of 4 + 4 - 1.
  BOOST_TEST(box_iou({0, 0, 2, 2}, {1, 1, 3, 3}) == 1.0 / 7);
  // Touching edges share no pixel: [0, 2) and [2, 4).
  BOOST_TEST(box_iou({0, 0, 2, 2}, {2, 0, 4, 2}) == 0.0);
  BOOST_TEST(box_iou({5, 5, 9, 8}, {5, 5, 9, 8}) == 1.0);
  // A one-pixel box inside a 2x2 one: area 1 (no "+1"), IoU 1/4.
  BOOST_TEST(box_iou({3, 3, 4, 4}, {3, 3, 5, 5}) == 0.25);
  BOOST_TEST(box_iou({0, 0, 0, 0}, {0, 0, 0, 0}) == 0.0);  // empty boxes: 0, not NaN
  BOOST_TEST(box_iou({0, 0, 4, 2}, {0, 1, 4, 5}) == box_iou({0, 1, 4, 5}, {0, 0, 4, 2}));
}

BOOST_AUTO_TEST_CASE(coco_thresholds_are_numpy_linspace) {
  const std::vector<double> t = coco_iou_thresholds();
  BOOST_TEST_REQUIRE(t.size() == 10u);
  BOOST_TEST(t.front() == 0.5);
  BOOST_TEST(t.back() == 0.95);
  BOOST_TEST(t[8] == 0.8999999999999999);  // numpy's value, not 0.9
  for (size_t i = 1; i < t.size(); ++i) BOOST_TEST(std::abs(t[i] - t[i - 1] - 0.05) < 1e-12);
}

BOOST_AUTO_TEST_CASE(bins_round_trip_within_half_a_bin) {
  for (int64_t bins : {1, 7, 16, 64, 1024}) {
    for (double size : {64.0, 48.0, 100.0}) {
      const double bin_width = size / bins;
      for (int step = 0; step <= 400; ++step) {
        const double v = size * step / 400;
        const int64_t bin = coordinate_to_bin(v, size, bins);
        BOOST_TEST_REQUIRE((bin >= 0 && bin < bins));
        BOOST_TEST(std::abs(bin_to_coordinate(bin, size, bins) - v) <= bin_width / 2 + 1e-12, "bins " << bins << " v " << v);
      }
    }
  }
  BOOST_TEST(coordinate_to_bin(0, 64, 64) == 0);
  BOOST_TEST(coordinate_to_bin(63.99, 64, 64) == 63);
  BOOST_TEST(coordinate_to_bin(64, 64, 64) == 63);   // the far edge: last bin
  BOOST_TEST(coordinate_to_bin(-3, 64, 64) == 0);    // outside the image: clamped
  BOOST_TEST(coordinate_to_bin(1e300, 64, 64) == 63);
  BOOST_TEST(coordinate_to_bin(std::nan(""), 64, 64) == 0);
  BOOST_TEST(coordinate_to_bin(10, 64, 32) == 5);    // floor(10 / 64 * 32)
  BOOST_TEST(bin_to_coordinate(5, 64, 32) == 11.0);  // centre of [10, 12)
  BOOST_CHECK_THROW(coordinate_to_bin(1, 64, 0), Error);
  BOOST_CHECK_THROW(location_token(10000), Error);
}

BOOST_AUTO_TEST_CASE(box_bins_use_paligemma_order) {
  const LocationGrid grid{64, 32, 128};  // 64 bins, 32 rows, 128 columns: a row is 2 bins, a column 1/2
  const LocationBins bins = box_to_bins({4, 10, 16, 100}, grid);
  BOOST_TEST(bins[0] == 8);   // y0 = 4 rows
  BOOST_TEST(bins[1] == 5);   // x0 = 10 columns
  BOOST_TEST(bins[2] == 32);  // y1
  BOOST_TEST(bins[3] == 50);  // x1
  const Box back = bins_to_box(bins, grid);
  BOOST_TEST(back.y_min == 4.25);
  BOOST_TEST(back.x_min == 11.0);
  BOOST_TEST(back.y_max == 16.25);
  BOOST_TEST(back.x_max == 101.0);
}

BOOST_AUTO_TEST_CASE(format_is_paligemma_text) {
  const LocationGrid grid{64, 64, 64};
  BOOST_TEST(location_token(7) == "<loc0007>");
  BOOST_TEST(format_detections({}, grid) == "");
  BOOST_TEST(format_detections({{"bag", {10, 4, 30, 21}}, {"ankle boot", {40, 33, 64, 62.5}}}, grid) ==
             "<loc0010><loc0004><loc0030><loc0021> bag ; <loc0040><loc0033><loc0063><loc0062> ankle boot");
}

BOOST_AUTO_TEST_CASE(format_then_parse_round_trips) {
  const LocationGrid grid{32, 64, 64};  // 2-pixel bins
  std::vector<LabelledBox> objects;
  for (int i = 0; i < 12; ++i) {
    const double y = 1.5 * i, x = 64 - 5.25 * i;
    objects.push_back({kClasses[i % 3], {y, std::max(0.0, x - 9), std::min(64.0, y + 3 + i), x}});
  }
  const std::string text = format_detections(objects, grid);
  const ParsedDetections parsed = parse_detections(text, kClasses, grid);
  BOOST_TEST(parsed.malformed() == 0);
  BOOST_TEST_REQUIRE(parsed.objects.size() == objects.size());
  for (size_t i = 0; i < objects.size(); ++i) {
    BOOST_TEST(parsed.objects[i].class_name == objects[i].class_name);
    BOOST_TEST(parsed.class_ids[i] == static_cast<int64_t>(i % 3));
    const Box& a = parsed.objects[i].box;
    const Box& b = objects[i].box;
    for (auto [p, q] : {std::pair{a.y_min, b.y_min}, {a.x_min, b.x_min}, {a.y_max, b.y_max}, {a.x_max, b.x_max}})
      BOOST_TEST(std::abs(p - q) <= 1.0, "object " << i);  // half a 2-pixel bin
  }
  // Parsed boxes sit on bin centres, so formatting them again gives the same text.
  BOOST_TEST(format_detections(parsed.objects, grid) == text);
  // Spacing around the separators and at the ends is not significant.
  const ParsedDetections loose =
      parse_detections("  <loc0001><loc0002><loc0003><loc0004>bag;<loc0001><loc0002><loc0003><loc0004>   sneaker  ", kClasses, grid);
  BOOST_TEST(loose.malformed() == 0);
  BOOST_TEST(loose.objects.size() == 2u);
}

BOOST_AUTO_TEST_CASE(every_malformed_segment_is_counted_never_thrown) {
  const LocationGrid grid{64, 64, 64};
  const std::string good = "<loc0001><loc0002><loc0003><loc0004> bag";
  auto kind_count = [&](const std::string& text, MalformedSegment kind) {
    const ParsedDetections parsed = parse_detections(text, kClasses, grid);
    return std::pair{parsed.malformed_by_kind[static_cast<size_t>(kind)], parsed};
  };
  struct Case {
    std::string segment;
    MalformedSegment kind;
  };
  const std::vector<Case> cases = {
      {"", MalformedSegment::empty},
      {"   ", MalformedSegment::empty},
      {"bag", MalformedSegment::too_few_locations},
      {"<loc0001><loc0002><loc0003> bag", MalformedSegment::too_few_locations},
      {"<loc0001><loc0002><loc0003><loc0004><loc0005> bag", MalformedSegment::too_many_locations},
      {"<loc001><loc0002><loc0003><loc0004> bag", MalformedSegment::bad_location_token},
      {"<loc00001><loc0002><loc0003><loc0004> bag", MalformedSegment::bad_location_token},
      {"<loc0a01><loc0002><loc0003><loc0004> bag", MalformedSegment::bad_location_token},
      {"<loc0001><loc0002><loc0003><loc00", MalformedSegment::bad_location_token},
      {"<loc0001><loc0064><loc0003><loc0004> bag", MalformedSegment::bin_out_of_range},
      {"<loc0001><loc0002><loc0003><loc9999> bag", MalformedSegment::bin_out_of_range},
      {"<loc0005><loc0002><loc0003><loc0004> bag", MalformedSegment::inverted_box},
      {"<loc0001><loc0005><loc0003><loc0004> bag", MalformedSegment::inverted_box},
      {"<loc0001><loc0002><loc0003><loc0004>", MalformedSegment::missing_class},
      {"<loc0001><loc0002><loc0003><loc0004>   ", MalformedSegment::missing_class},
      {"<loc0001><loc0002><loc0003><loc0004> hat", MalformedSegment::unknown_class},
      {"<loc0001><loc0002><loc0003><loc0004> Bag", MalformedSegment::unknown_class},
      {"<loc0001><loc0002><loc0003><loc0004> bag <loc0005>", MalformedSegment::unknown_class},
  };
  for (const Case& c : cases) {
    // Between two good objects, so a fault cannot swallow its neighbours.
    const auto [count, parsed] = kind_count(good + " ; " + c.segment + " ; " + good, c.kind);
    BOOST_TEST(count == 1, "'" << c.segment << "' as " << malformed_segment_name(c.kind));
    BOOST_TEST(parsed.malformed() == 1, "'" << c.segment << "'");
    BOOST_TEST(parsed.objects.size() == 2u, "'" << c.segment << "'");
  }
  // A trailing separator leaves an empty segment; a whole output of nothing is no detections.
  BOOST_TEST(kind_count(good + " ;", MalformedSegment::empty).first == 1);
  BOOST_TEST(kind_count(";", MalformedSegment::empty).first == 2);
  BOOST_TEST(parse_detections("", kClasses, grid).malformed() == 0);
  BOOST_TEST(parse_detections(" \n", kClasses, grid).objects.empty());
  // Equal bins are a (zero-area) box, not a fault.
  BOOST_TEST(parse_detections("<loc0003><loc0003><loc0003><loc0003> bag", kClasses, grid).malformed() == 0);
  // Arbitrary bytes: counted, never thrown.
  std::string junk;
  for (int i = 0; i < 600; ++i) junk += static_cast<char>((i * 37 + 11) % 256);
  BOOST_CHECK_NO_THROW(parse_detections(junk, kClasses, grid));
  BOOST_TEST(parse_detections(junk, kClasses, grid).objects.empty());
  BOOST_TEST(parse_detections(junk, kClasses, grid).malformed() >= 1);
}

BOOST_AUTO_TEST_CASE(perfect_detections_score_one) {
  std::vector<GroundTruthBox> gts;
  std::vector<DetectedBox> dets;
  for (int64_t image = 0; image < 5; ++image)
    for (int64_t c = 0; c < 3; ++c) {
      const Box box{double(image), double(c * 10), double(image + 8), double(c * 10 + 9)};
      gts.push_back(truth(image, c, box));
      dets.push_back(detection(image, c, box));
    }
  const AveragePrecision ap = average_precision(dets, gts, 3);
  BOOST_TEST(ap.map50 == 1.0);
  BOOST_TEST(ap.map == 1.0);
  for (int64_t c = 0; c < 3; ++c) BOOST_TEST(ap.per_class[c] == std::vector<double>(10, 1.0), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_false_positive_ranked_first) {
  // Two ground truths found by the 2nd and 3rd detections: precision 1/2 at recall 1/2 and 2/3 at
  // recall 1, so every recall point has precision 2/3 after the envelope.
  const std::vector<GroundTruthBox> gts = {truth(0, 0, {0, 0, 10, 10}), truth(1, 0, {0, 0, 10, 10})};
  const std::vector<DetectedBox> dets = {detection(0, 0, {20, 20, 30, 30}, 0.9), detection(0, 0, {0, 0, 10, 10}, 0.8),
                                         detection(1, 0, {0, 0, 10, 10}, 0.7)};
  const AveragePrecision ap = average_precision(dets, gts, 1);
  BOOST_TEST(std::abs(ap.map50 - 2.0 / 3) < 1e-12);
  BOOST_TEST(std::abs(ap.map50 - ap_by_definition({false, true, true}, 2)) < 1e-12);
  // Ranked last instead, it costs nothing: full recall is reached at precision 1 first.
  std::vector<DetectedBox> last = dets;
  last[0].score = 0.1;
  BOOST_TEST(average_precision(last, gts, 1).map50 == 1.0);
}

BOOST_AUTO_TEST_CASE(without_scores_the_output_order_ranks) {
  // Default score 1: ties keep input order, image by image. The false positive of image 0 comes
  // before image 1's hit.
  const std::vector<GroundTruthBox> gts = {truth(0, 0, {0, 0, 10, 10}), truth(1, 0, {0, 0, 10, 10})};
  const std::vector<DetectedBox> dets = {detection(1, 0, {0, 0, 10, 10}), detection(0, 0, {0, 0, 10, 10}),
                                         detection(0, 0, {20, 20, 30, 30})};
  // Ranked: image 0 hit, image 0 miss, image 1 hit -> precision 1, 1/2, 2/3.
  const double expected = ap_by_definition({true, false, true}, 2);
  BOOST_TEST(std::abs(average_precision(dets, gts, 1).map50 - expected) < 1e-12);
  BOOST_TEST(expected < 1.0);
}

BOOST_AUTO_TEST_CASE(duplicate_detections_are_false_positives) {
  const std::vector<GroundTruthBox> gts = {truth(0, 0, {0, 0, 10, 10})};
  const std::vector<DetectedBox> dets = {detection(0, 0, {0, 0, 10, 10}, 0.9), detection(0, 0, {0, 0, 10, 10}, 0.8),
                                         detection(0, 0, {0, 1, 10, 10}, 0.7)};
  // The first takes the only ground truth; recall 1 at precision 1 already, so AP stays 1 ...
  BOOST_TEST(average_precision(dets, gts, 1).map50 == 1.0);
  // ... but with a second, unfound ground truth the duplicates pull precision down.
  std::vector<GroundTruthBox> two = gts;
  two.push_back(truth(1, 0, {0, 0, 10, 10}));
  const double expected = ap_by_definition({true, false, false}, 2);
  BOOST_TEST(std::abs(average_precision(dets, two, 1).map50 - expected) < 1e-12);
  BOOST_TEST(std::abs(expected - 51.0 / 101) < 1e-12);  // recall points 0..0.5 at precision 1
  // One detection matches at most one ground truth: two ground truths under one box, one found.
  const std::vector<GroundTruthBox> stacked = {truth(0, 0, {0, 0, 10, 10}), truth(0, 0, {0, 0, 10, 10})};
  BOOST_TEST(std::abs(average_precision({dets[0]}, stacked, 1).map50 - 51.0 / 101) < 1e-12);
}

BOOST_AUTO_TEST_CASE(classes_without_predictions_or_ground_truth) {
  const std::vector<GroundTruthBox> gts = {truth(0, 0, {0, 0, 10, 10}), truth(0, 1, {0, 0, 10, 10})};
  // Class 1 has ground truth and no prediction: AP 0. Class 2 has a prediction and no ground
  // truth: no AP, left out of the means.
  const std::vector<DetectedBox> dets = {detection(0, 0, {0, 0, 10, 10}), detection(0, 2, {0, 0, 10, 10})};
  const AveragePrecision ap = average_precision(dets, gts, 3);
  BOOST_TEST(ap.per_class[1] == std::vector<double>(10, 0.0), boost::test_tools::per_element());
  BOOST_TEST(!ap.has_ground_truth[2]);
  BOOST_TEST(ap.per_class[2].empty());
  BOOST_TEST(ap.map50 == 0.5);
  BOOST_TEST(ap.map == 0.5);
  const AveragePrecision none = average_precision(dets, {}, 3);
  BOOST_TEST(std::isnan(none.map50));
  BOOST_TEST(std::isnan(none.map));
  BOOST_CHECK_THROW(average_precision(dets, gts, 2), Error);  // class 2 of 2 classes
}

BOOST_AUTO_TEST_CASE(iou_exactly_at_a_threshold_matches) {
  // Ground truth [0, 10) x [0, 10); the detection [0, 10) x [0, w) has IoU w / 10 exactly.
  const std::vector<GroundTruthBox> gts = {truth(0, 0, {0, 0, 10, 10})};
  const std::vector<double> t = coco_iou_thresholds();
  for (int w : {5, 6, 7, 8}) {  // IoU 0.5, 0.6, 0.7, 0.8 (0.6 and 0.7 are not exactly representable)
    const AveragePrecision ap = average_precision({detection(0, 0, {0, 0, 10, double(w)})}, gts, 1);
    for (size_t i = 0; i < t.size(); ++i) {
      const double iou = box_iou({0, 0, 10, double(w)}, {0, 0, 10, 10});
      BOOST_TEST(ap.per_class[0][i] == (iou >= t[i] ? 1.0 : 0.0), "w " << w << " threshold " << t[i]);
    }
    BOOST_TEST(ap.map50 == 1.0, "w " << w);  // IoU >= 0.5 always
  }
  // w = 5 is exactly 0.5: matched at 0.5, not at 0.55.
  const AveragePrecision half = average_precision({detection(0, 0, {0, 0, 10, 5})}, gts, 1);
  BOOST_TEST(half.per_class[0][0] == 1.0);
  BOOST_TEST(half.per_class[0][1] == 0.0);
  BOOST_TEST(half.map == 0.1);
}

BOOST_AUTO_TEST_CASE(greedy_matching_takes_the_best_unmatched_ground_truth) {
  // The first detection overlaps both ground truths and takes the better one (b), so the second
  // detection, which only fits a, still matches: both true.
  const Box a{0, 0, 10, 10}, b{0, 4, 10, 14};
  const std::vector<GroundTruthBox> gts = {truth(0, 0, a), truth(0, 0, b)};
  const std::vector<DetectedBox> dets = {detection(0, 0, {0, 3, 10, 13}, 0.9), detection(0, 0, {0, 0, 10, 9}, 0.8)};
  BOOST_TEST(average_precision(dets, gts, 1).map50 == 1.0);
  // Per-image limit: only the best max_detections_per_image of an image count.
  const AveragePrecision capped = average_precision(dets, gts, 1, DetectionOptions{1});
  BOOST_TEST(std::abs(capped.map50 - ap_by_definition({true}, 2)) < 1e-12);
}

namespace {

// The pseudo-random sets of bench/detection_metrics_reference.py, generated the same way.
struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return next() % n; }
};

struct RandomSet {
  std::vector<GroundTruthBox> ground_truth;
  std::vector<DetectedBox> detections;
};

RandomSet make_set(uint64_t seed, int64_t images, int64_t classes, bool quarter_pixels, int64_t score_levels) {
  SplitMix64 rng{seed};
  const double unit = quarter_pixels ? 4 : 1;
  auto coord = [&](int64_t n) { return double(rng.below(uint64_t(n * unit))) / unit; };
  // Explicit sequencing: the reference draws the arguments left to right.
  auto random_box = [&] {
    const double y0 = coord(48), x0 = coord(48);
    const double h = 6 + coord(18), w = 6 + coord(18);
    return Box{y0, x0, y0 + h, x0 + w};
  };
  auto jittered = [&](const Box& box) {
    double j[4];
    for (double& v : j) v = coord(3) - 1;
    const double y0 = box.y_min + j[0], x0 = box.x_min + j[1];
    return Box{y0, x0, std::max(y0 + 0.25, box.y_max + j[2]), std::max(x0 + 0.25, box.x_max + j[3])};
  };
  auto score = [&] { return double(rng.below(uint64_t(score_levels + 1))) / double(score_levels); };
  RandomSet set;
  for (int64_t image = 0; image < images; ++image) {
    for (int64_t c = 0; c + 1 < classes; ++c) {
      const uint64_t objects = rng.below(3);
      for (uint64_t o = 0; o < objects; ++o) {
        const Box box = random_box();
        set.ground_truth.push_back(truth(image, c, box));
        const uint64_t copies = rng.below(3);
        for (uint64_t k = 0; k < copies; ++k) {
          const Box near = jittered(box);
          set.detections.push_back(detection(image, c, near, score()));
        }
      }
    }
    const uint64_t false_positives = rng.below(3);
    for (uint64_t k = 0; k < false_positives; ++k) {
      const int64_t c = int64_t(rng.below(uint64_t(classes)));
      const Box box = random_box();
      set.detections.push_back(detection(image, c, box, score()));
    }
  }
  return set;
}

struct Expected {
  double map, map50;
  std::vector<std::vector<double>> per_class;  // [class][threshold]; empty: no ground truth
};

}  // namespace

BOOST_AUTO_TEST_CASE(agrees_with_pycocotools) {
  struct Set {
    const char* name;
    uint64_t seed;
    int64_t images, classes;
    bool quarter_pixels;
    int64_t score_levels;
    size_t ground_truth, detections;
    Expected expected;
  };
  // Printed by bench/detection_metrics_reference.py (pycocotools 2.0.11, numpy 2.4.6).
  const std::vector<Set> sets = {
      {"whole_pixels_tied_scores", 17, 30, 4, false, 4, 79, 109,
       {0.2879905170494836, 0.4666114985545064,
        {
            {0.3370806980363588, 0.3370806980363588, 0.3370806980363588, 0.3370806980363588, 0.3157554885923375, 0.23939350456784808, 0.1673267326732673, 0.03048462741010943, 0.01146430432516936, 0.003126628452318916},
            {0.5704315390855166, 0.5704315390855166, 0.5283567746695094, 0.4991503774836509, 0.4434942416032154, 0.3484036156652103, 0.23308918803968307, 0.08923267326732673, 0.02381589510302382, 0.0},
            {0.4923222585416436, 0.4923222585416436, 0.4923222585416436, 0.4747204983656261, 0.4386813681368137, 0.3443627450980392, 0.2551272984441301, 0.1741230773323638, 0.041267992345453024, 0.012185833968012186},
            {},  // no ground truth
        }}},
      {"quarter_pixels_fine_scores", 23, 40, 5, true, 1000, 162, 186,
       {0.2742855646366139, 0.4664588819157368,
        {
            {0.4673759408907924, 0.4673759408907924, 0.4673759408907924, 0.4384113829443145, 0.381020959238781, 0.31965989689031016, 0.1823582358235824, 0.0625098224108125, 0.011107413262334637, 0.0},
            {0.3804133377138618, 0.3804133377138618, 0.3804133377138618, 0.3804133377138618, 0.3636519047832385, 0.30771183695615845, 0.15425113939965424, 0.0779970591918433, 0.01855013087515648, 0.0049504950495049506},
            {0.5379598546263102, 0.5379598546263102, 0.5145408583149144, 0.42020966802562615, 0.3302021798818538, 0.26956762903181075, 0.14759963391297112, 0.08345120226308343, 0.0, 0.0},
            {0.48008639443198303, 0.48008639443198303, 0.44739326726049355, 0.44739326726049355, 0.4096206125597313, 0.3146540608961954, 0.21928997711017634, 0.07854559040809742, 0.0069006900690069, 0.0},
            {},  // no ground truth
        }}},
      {"whole_pixels_all_scores_one", 31, 25, 3, false, 1, 55, 81,
       {0.24443927040135477, 0.38707217029248236,
        {
            {0.43575678754394637, 0.43575678754394637, 0.43575678754394637, 0.43575678754394637, 0.41842022688844815, 0.3728511342026275, 0.21345354730992322, 0.15708175002404692, 0.03558948331807971, 0.010042432814710041},
            {0.33838755304101836, 0.33838755304101836, 0.2742594595594013, 0.2742594595594013, 0.2742594595594013, 0.2092203868092045, 0.1492220650636492, 0.06349206349206349, 0.01485148514851485, 0.0019801980198019802},
            {},  // no ground truth
        }}},
  };
  for (const Set& s : sets) {
    const RandomSet set = make_set(s.seed, s.images, s.classes, s.quarter_pixels, s.score_levels);
    // The same boxes as the reference: same counts (and the AP values below check the rest).
    BOOST_TEST_REQUIRE(set.ground_truth.size() == s.ground_truth, s.name);
    BOOST_TEST_REQUIRE(set.detections.size() == s.detections, s.name);
    const AveragePrecision ap = average_precision(set.detections, set.ground_truth, s.classes);
    BOOST_TEST(std::abs(ap.map - s.expected.map) < 1e-9, s.name << " mAP " << ap.map << " vs " << s.expected.map);
    BOOST_TEST(std::abs(ap.map50 - s.expected.map50) < 1e-9, s.name << " mAP50 " << ap.map50 << " vs " << s.expected.map50);
    for (int64_t c = 0; c < s.classes; ++c) {
      const std::vector<double>& want = s.expected.per_class[c];
      BOOST_TEST(ap.has_ground_truth[c] == !want.empty(), s.name << " class " << c);
      BOOST_TEST_REQUIRE(ap.per_class[c].size() == want.size(), s.name << " class " << c);
      for (size_t t = 0; t < want.size(); ++t)
        BOOST_TEST(std::abs(ap.per_class[c][t] - want[t]) < 1e-9, s.name << " class " << c << " threshold " << t);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
