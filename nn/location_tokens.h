#pragma once
// Detection as text, PaliGemma's way: each object is four location tokens <loc y0><loc x0><loc y1>
// <loc x1> (coordinates normalised to the image and quantised to `bins` bins) followed by its class
// name, and objects are joined by " ; ":
//   "<loc0010><loc0004><loc0030><loc0021> bag ; <loc0040><loc0033><loc0060><loc0062> sneaker"
// Boxes are pixel edges, half-open (docs/DATA.md): rows [y_min, y_max), columns [x_min, x_max).
//
// Quantisation: a coordinate v in [0, size] goes to bin clamp(floor(v / size * bins), 0, bins - 1),
// the same rule for all four (so v = size, a box touching the far edge, lands in the last bin), and a
// bin decodes to its centre, (bin + 1/2) * size / bins. Encode-then-decode therefore moves every
// coordinate of an in-image box by at most half a bin; a box thinner than a bin may decode to zero
// width (both edges in one bin), never to an inverted box.
//
// Parsing reads a model's output and never throws: a segment that is not exactly four well-formed,
// in-range location tokens followed by a known class name is counted by reason and skipped.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nn/detection_metrics.h"

namespace tessera::nn {

struct LocationGrid {
  int64_t bins = 64;          // number of location tokens per axis (<loc0000> .. <loc{bins-1}>)
  double image_height = 64;   // pixels
  double image_width = 64;
};

int64_t coordinate_to_bin(double v, double size, int64_t bins);
double bin_to_coordinate(int64_t bin, double size, int64_t bins);  // the bin's centre

using LocationBins = std::array<int64_t, 4>;  // y0, x0, y1, x1
LocationBins box_to_bins(const Box& box, const LocationGrid& grid);
Box bins_to_box(const LocationBins& bins, const LocationGrid& grid);

// "<loc0042>": always four digits (PaliGemma's token spelling; bins <= 10000).
std::string location_token(int64_t bin);

struct LabelledBox {
  std::string class_name;
  Box box;
};

// The target text of a detection prompt, objects in the order given.
std::string format_detections(const std::vector<LabelledBox>& objects, const LocationGrid& grid);

// Why a segment of model output was skipped.
enum class MalformedSegment {
  empty,              // nothing between two separators (or a trailing/leading separator)
  too_few_locations,  // fewer than four location tokens before the class name
  too_many_locations, // more than four
  bad_location_token, // "<loc" not followed by exactly four digits and ">"
  bin_out_of_range,   // a bin >= grid.bins
  inverted_box,       // y1 bin < y0 bin or x1 bin < x0 bin
  missing_class,      // four locations and no name after them
  unknown_class,      // a name not in the class list
};
inline constexpr int kMalformedSegmentKinds = 8;
const char* malformed_segment_name(MalformedSegment kind);

struct ParsedDetections {
  std::vector<LabelledBox> objects;  // in output order; class_name is one of the known names
  std::vector<int64_t> class_ids;    // index of each object's name in the class list
  std::array<int64_t, kMalformedSegmentKinds> malformed_by_kind{};
  int64_t malformed() const;         // segments skipped, all kinds
};

// Splits on ';', trims spaces around each segment, and reads each as four location tokens then a
// class name (the rest of the segment, trimmed; names may contain spaces). An output that is empty
// or only spaces is no detections and nothing malformed; a segment reports only its first fault.
ParsedDetections parse_detections(std::string_view text, const std::vector<std::string>& class_names,
                                  const LocationGrid& grid);

}  // namespace tessera::nn
