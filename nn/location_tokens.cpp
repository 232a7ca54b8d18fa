#include "nn/location_tokens.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "autograd/error.h"

namespace tessera::nn {

static void check_grid(int64_t bins, double size) {
  if (bins < 1 || bins > 10000) fail("location tokens: bins must be in 1..10000 (four digits), got {}", bins);
  if (!(size > 0)) fail("location tokens: the image size must be positive, got {}", size);
}

int64_t coordinate_to_bin(double v, double size, int64_t bins) {
  check_grid(bins, size);
  const double bin = std::floor(v / size * static_cast<double>(bins));
  if (!(bin > 0)) return 0;  // also NaN, which std::clamp would pass through to an undefined cast
  // Clamped as a double first: a coordinate far outside the image must not overflow the cast.
  return static_cast<int64_t>(std::min(bin, static_cast<double>(bins - 1)));
}

double bin_to_coordinate(int64_t bin, double size, int64_t bins) {
  check_grid(bins, size);
  return (static_cast<double>(bin) + 0.5) * size / static_cast<double>(bins);
}

LocationBins box_to_bins(const Box& box, const LocationGrid& grid) {
  return {coordinate_to_bin(box.y_min, grid.image_height, grid.bins), coordinate_to_bin(box.x_min, grid.image_width, grid.bins),
          coordinate_to_bin(box.y_max, grid.image_height, grid.bins), coordinate_to_bin(box.x_max, grid.image_width, grid.bins)};
}

Box bins_to_box(const LocationBins& bins, const LocationGrid& grid) {
  return {bin_to_coordinate(bins[0], grid.image_height, grid.bins), bin_to_coordinate(bins[1], grid.image_width, grid.bins),
          bin_to_coordinate(bins[2], grid.image_height, grid.bins), bin_to_coordinate(bins[3], grid.image_width, grid.bins)};
}

std::string location_token(int64_t bin) {
  if (bin < 0 || bin > 9999) fail("location tokens: bin {} has no four-digit token", bin);
  return fmt::format("<loc{:04d}>", bin);
}

std::string format_detections(const std::vector<LabelledBox>& objects, const LocationGrid& grid) {
  std::string text;
  for (const LabelledBox& object : objects) {
    if (!text.empty()) text += " ; ";
    for (int64_t bin : box_to_bins(object.box, grid)) text += location_token(bin);
    text += ' ';
    text += object.class_name;
  }
  return text;
}

const char* malformed_segment_name(MalformedSegment kind) {
  switch (kind) {
    case MalformedSegment::empty: return "empty";
    case MalformedSegment::too_few_locations: return "too_few_locations";
    case MalformedSegment::too_many_locations: return "too_many_locations";
    case MalformedSegment::bad_location_token: return "bad_location_token";
    case MalformedSegment::bin_out_of_range: return "bin_out_of_range";
    case MalformedSegment::inverted_box: return "inverted_box";
    case MalformedSegment::missing_class: return "missing_class";
    case MalformedSegment::unknown_class: return "unknown_class";
  }
  return "unknown";
}

int64_t ParsedDetections::malformed() const {
  int64_t total = 0;
  for (int64_t n : malformed_by_kind) total += n;
  return total;
}

namespace {

std::string_view trimmed(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\n\r");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\n\r") - first + 1);
}

constexpr std::string_view kLocPrefix = "<loc";
constexpr size_t kLocTokenLength = 9;  // "<loc" + 4 digits + ">"

// Reads one "<locNNNN>" at the front of `s`; false if it is not exactly that.
bool read_location_token(std::string_view s, int64_t& bin) {
  if (s.size() < kLocTokenLength || s[kLocTokenLength - 1] != '>') return false;
  bin = 0;
  for (size_t i = kLocPrefix.size(); i < kLocTokenLength - 1; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    bin = bin * 10 + (s[i] - '0');
  }
  return true;
}

// One object, or the reason it is not one.
struct SegmentResult {
  bool ok = false;
  MalformedSegment fault = MalformedSegment::empty;
  LocationBins bins{};
  int64_t class_id = -1;
};

SegmentResult parse_segment(std::string_view segment, const std::vector<std::string>& class_names, const LocationGrid& grid) {
  SegmentResult result;
  auto fault = [&](MalformedSegment kind) {
    result.fault = kind;
    return result;
  };
  if (segment.empty()) return fault(MalformedSegment::empty);
  size_t count = 0;
  while (segment.substr(0, kLocPrefix.size()) == kLocPrefix) {
    int64_t bin = 0;
    if (!read_location_token(segment, bin)) return fault(MalformedSegment::bad_location_token);
    if (count == 4) return fault(MalformedSegment::too_many_locations);
    if (bin >= grid.bins) return fault(MalformedSegment::bin_out_of_range);
    result.bins[count++] = bin;
    segment.remove_prefix(kLocTokenLength);
  }
  if (count < 4) return fault(MalformedSegment::too_few_locations);
  if (result.bins[2] < result.bins[0] || result.bins[3] < result.bins[1]) return fault(MalformedSegment::inverted_box);
  const std::string_view name = trimmed(segment);
  if (name.empty()) return fault(MalformedSegment::missing_class);
  const auto known = std::find(class_names.begin(), class_names.end(), name);
  if (known == class_names.end()) return fault(MalformedSegment::unknown_class);
  result.class_id = known - class_names.begin();
  result.ok = true;
  return result;
}

}  // namespace

ParsedDetections parse_detections(std::string_view text, const std::vector<std::string>& class_names,
                                  const LocationGrid& grid) {
  check_grid(grid.bins, grid.image_height);
  check_grid(grid.bins, grid.image_width);
  ParsedDetections parsed;
  if (trimmed(text).empty()) return parsed;
  while (true) {
    const size_t separator = text.find(';');
    const SegmentResult segment = parse_segment(trimmed(text.substr(0, separator)), class_names, grid);
    if (segment.ok) {
      parsed.objects.push_back({class_names[segment.class_id], bins_to_box(segment.bins, grid)});
      parsed.class_ids.push_back(segment.class_id);
    } else {
      ++parsed.malformed_by_kind[static_cast<size_t>(segment.fault)];
    }
    if (separator == std::string_view::npos) break;
    text.remove_prefix(separator + 1);
  }
  return parsed;
}

}  // namespace tessera::nn
