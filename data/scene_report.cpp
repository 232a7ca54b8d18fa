#include "data/scene_report.h"

#include <algorithm>
#include <map>

#include "autograd/error.h"
#include "data/draw.h"
#include "data/png.h"
#include "data/scene_text.h"

namespace tessera::data {

void write_scene_grid(const std::string& path, const Dataset& scenes, int64_t first, int64_t count, int zoom,
                      int64_t per_row) {
  const DatasetInfo& info = scenes.info();
  if (!info.has_objects) fail("dataset file '{}' has no objects to draw", info.path);
  if (first < 0 || count < 1 || first + count > info.size)
    fail("dataset file '{}': scenes {}..{} asked for, the file has {}", info.path, first, first + count - 1, info.size);
  const int64_t h = info.height * zoom, w = info.width * zoom, F = info.frames;
  const int64_t frame_bytes = info.height * info.width * info.channels;
  std::vector<uint8_t> tiles;
  std::vector<uint8_t> image(size_t(scenes.image_bytes()));
  const Color black{0, 0, 0};
  for (int64_t i = first; i < first + count; ++i) {
    scenes.read_range(i, 1, image.data());
    for (int64_t f = 0; f < F; ++f) {
      std::vector<uint8_t> rgb = to_rgb_zoomed(image.data() + f * frame_bytes, info.height, info.width, info.channels, zoom);
      // The scene's edge (the background is black, like the grid's padding); then the boxes over it.
      draw_box(rgb.data(), h, w, 0, 0, float(h), float(w), Color{70, 70, 70});
      const ObjectsView v = scenes.objects(i, f);
      for (int64_t k = 0; k < v.count; ++k) {
        const float* b = v.boxes + 4 * k;
        const int32_t c = v.classes[k];
        const Color color = palette_color(c);
        draw_box(rgb.data(), h, w, b[0] * float(zoom), b[1] * float(zoom), b[2] * float(zoom), b[3] * float(zoom), color);
        const std::string name = c >= 0 && size_t(c) < info.object_class_names.size() ? info.object_class_names[size_t(c)]
                                                                                        : std::to_string(c);
        draw_text(rgb.data(), h, w, int64_t(b[0] * float(zoom)) + 1, int64_t(b[1] * float(zoom)) + 1, name, color, &black);
      }
      tiles.insert(tiles.end(), rgb.begin(), rgb.end());
    }
  }
  // A clip is a row of its frames.
  write_image_grid(path, tiles.data(), count * F, h, w, 3, F > 1 ? F : per_row, 4);
}

void write_detection_grid(const std::string& path, const Dataset& scenes, const std::vector<int64_t>& indices,
                          const std::vector<std::vector<LabelledBox>>& predicted, int zoom, int64_t per_row) {
  const DatasetInfo& info = scenes.info();
  if (!info.has_objects) fail("dataset file '{}' has no objects to draw", info.path);
  if (indices.empty() || indices.size() != predicted.size())
    fail("write_detection_grid: {} scenes and {} prediction lists", indices.size(), predicted.size());
  const int64_t h = info.height * zoom, w = info.width * zoom;
  const Color black{0, 0, 0}, truth{60, 200, 60}, prediction{255, 70, 70};
  const auto z = float(zoom);
  std::vector<uint8_t> tiles, image(size_t(scenes.image_bytes()));
  for (size_t k = 0; k < indices.size(); ++k) {
    const int64_t i = indices[k];
    if (i < 0 || i >= info.size) fail("dataset file '{}': scene {} asked for, the file has {}", info.path, i, info.size);
    scenes.read_range(i, 1, image.data());
    std::vector<uint8_t> rgb = to_rgb_zoomed(image.data(), info.height, info.width, info.channels, zoom);
    draw_box(rgb.data(), h, w, 0, 0, float(h), float(w), Color{70, 70, 70});
    const ObjectsView v = scenes.objects(i);
    for (int64_t j = 0; j < v.count; ++j) {
      const float* b = v.boxes + 4 * j;
      draw_box(rgb.data(), h, w, b[0] * z, b[1] * z, b[2] * z, b[3] * z, truth);
    }
    for (const LabelledBox& b : predicted[k]) {
      draw_box(rgb.data(), h, w, b.y_min * z, b.x_min * z, b.y_max * z, b.x_max * z, prediction, 2);
      draw_text(rgb.data(), h, w, int64_t(b.y_min * z) + 2, int64_t(b.x_min * z) + 2, b.label, prediction, &black);
    }
    tiles.insert(tiles.end(), rgb.begin(), rgb.end());
  }
  write_image_grid(path, tiles.data(), int64_t(indices.size()), h, w, 3, per_row, 4);
}

namespace {

bool word_char(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-'; }

// `phrase` in `text` as whole words ("shirt" is not in "t-shirt", nor "bag" in "bags").
bool names(const std::string& text, const std::string& phrase) {
  for (size_t at = text.find(phrase); at != std::string::npos; at = text.find(phrase, at + 1)) {
    const size_t end = at + phrase.size();
    if ((at == 0 || !word_char(text[at - 1])) && (end == text.size() || !word_char(text[end]))) return true;
  }
  return false;
}

// K - 1 for a question that starts "in frame K, " (1 <= K <= frames), else `frames` (all of them).
int64_t asked_frame(const std::string& question, int64_t frames) {
  const std::string prefix = "in frame ";
  if (question.compare(0, prefix.size(), prefix) != 0) return frames;
  const size_t comma = question.find(", ", prefix.size());
  if (comma == std::string::npos) return frames;
  const std::string digits = question.substr(prefix.size(), comma - prefix.size());
  if (digits.empty() || digits.size() > 3 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return frames;
  const int64_t k = std::stoll(digits);
  return k >= 1 && k <= frames ? k - 1 : frames;
}

}  // namespace

std::vector<QuestionTypeStats> question_stats(const Dataset& scenes) {
  const DatasetInfo& info = scenes.info();
  if (info.questions_per_image == 0 || !info.has_objects)
    fail("dataset file '{}' has no questions and objects (not a scene file)", info.path);
  const Nouns nouns(info.object_class_names);
  const size_t types = info.question_type_names.size();
  std::vector<QuestionTypeStats> stats(types);
  std::vector<std::map<std::string, int64_t>> answers(types);
  for (size_t t = 0; t < types; ++t) stats[t].type = info.question_type_names[t];
  const int64_t F = info.frames;
  for (int64_t i = 0; i < info.size; ++i) {
    // present[f][c]: frame f holds class c; present[F]: some frame does.
    std::vector<std::vector<bool>> present(size_t(F + 1), std::vector<bool>(nouns.size(), false));
    for (int64_t f = 0; f < F; ++f) {
      const ObjectsView v = scenes.objects(i, f);
      for (int64_t k = 0; k < v.count; ++k)
        if (v.classes[k] >= 0 && size_t(v.classes[k]) < nouns.size())
          present[size_t(f)][size_t(v.classes[k])] = present[size_t(F)][size_t(v.classes[k])] = true;
    }
    const auto questions = scenes.questions(i), replies = scenes.answers(i);
    const auto type_ids = scenes.question_types(i);
    for (size_t q = 0; q < questions.size(); ++q) {
      if (type_ids[q] < 0 || size_t(type_ids[q]) >= types) continue;  // data verify reports these
      QuestionTypeStats& s = stats[size_t(type_ids[q])];
      ++s.questions;
      ++answers[size_t(type_ids[q])][replies[q]];
      // A clip's "in frame K, ..." asks about frame K; its other questions about all frames.
      const int64_t frame = F > 1 ? asked_frame(questions[q], F) : 0;
      for (size_t c = 0; c < nouns.size(); ++c)
        if (names(questions[q], nouns.singular[c]) || names(questions[q], nouns.plural[c]))
          ++(present[size_t(frame)][c] ? s.naming_present : s.naming_absent);
    }
  }
  for (size_t t = 0; t < types; ++t) {
    QuestionTypeStats& s = stats[t];
    s.distinct_answers = int64_t(answers[t].size());
    int64_t most = 0;
    for (const auto& [answer, n] : answers[t])
      if (n > most) s.majority_answer = answer, most = n;
    s.majority_share = s.questions ? double(most) / double(s.questions) : 0;
  }
  return stats;
}

}  // namespace tessera::data
