#pragma once
// What `tessera data info` shows of a scene file: pictures of the scenes with their boxes and
// class names, and the statistics of their questions that say whether the text can be answered
// without looking (the most common answer of each type, how often questions name absent classes).
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace tessera::data {

// Scenes `first`..`first + count - 1` zoomed `zoom` times, as RGB, each object's box and class name
// drawn in its class's colour, tiled `per_row` to a row; written to `path` as a PNG. A clip file
// draws clips `first`..`first + count - 1`, one row each, its frames side by side.
void write_scene_grid(const std::string& path, const Dataset& scenes, int64_t first, int64_t count, int zoom = 3,
                      int64_t per_row = 4);

// A box to draw over a scene, in pixels (y_min, x_min, y_max, x_max) and with its label.
struct LabelledBox {
  std::string label;
  float y_min = 0, x_min = 0, y_max = 0, x_max = 0;
};

// Scenes `indices` with their true boxes (thin, green, unlabelled) and `predicted[k]` over scene
// indices[k] (red, labelled), zoomed and tiled as write_scene_grid; what `tessera generate` draws
// for a detect prompt.
void write_detection_grid(const std::string& path, const Dataset& scenes, const std::vector<int64_t>& indices,
                          const std::vector<std::vector<LabelledBox>>& predicted, int zoom = 4, int64_t per_row = 4);

struct QuestionTypeStats {
  std::string type;
  int64_t questions = 0;
  std::string majority_answer;  // the most common answer (ties: the first in sorted order)
  double majority_share = 0;    // its fraction: the accuracy of always giving it
  int64_t distinct_answers = 0;
  // Questions that name a class (whole-word noun, singular or plural), split by whether the scene
  // holds one: an answerer that assumes the class is there must not be rewarded.
  int64_t naming_present = 0, naming_absent = 0;
};

// Per question type, over the whole file. Error if the file has no questions or objects. In a clip
// file, a question "in frame K, ..." names a present class when frame K holds it, any other when
// some frame does.
std::vector<QuestionTypeStats> question_stats(const Dataset& scenes);

}  // namespace tessera::data
