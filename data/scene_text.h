#pragma once
// The facts of a multi-object scene and the text that states them. A scene is a few objects,
// each a class and the tight box of its pixels; its geometry (where one object is relative to
// another, which ninth of the image it is in, how large it is) is defined here once, and the
// captions and question/answer pairs are generated from that geometry by a small grammar
// (docs/DATA.md spells it out). Everything generated is true of the boxes by construction, and a
// test parses the text back and checks it against the boxes independently.
#include <cstdint>
#include <string>
#include <vector>

namespace tessera::data {

// Pixel edges, half-open: the object covers rows [y_min, y_max) and columns [x_min, x_max).
struct Box {
  float y_min = 0, x_min = 0, y_max = 0, x_max = 0;
  float height() const { return y_max - y_min; }
  float width() const { return x_max - x_min; }
  float longer_side() const { return height() > width() ? height() : width(); }
  float center_y() const { return (y_min + y_max) / 2; }
  float center_x() const { return (x_min + x_max) / 2; }
};
float intersection_over_union(const Box& a, const Box& b);

struct SceneObject {
  int32_t cls = 0;
  Box box;
};

// Where `a` is relative to `b`, by their centres: the axis along which they are further apart
// decides; none when the two distances are equal. So every ordered pair has at most one place, b
// relative to a is the opposite one, and a horizontal flip turns left into right exactly.
enum class Place { none, left_of, right_of, above, below };
Place place_of(const Box& a, const Box& b);
const char* place_words(Place place);  // "left of", "right of", "above", "below"

// Which ninth of a size x size image a box's centre is in: rows top / middle / bottom and columns
// left / middle / right by thirds, a centre exactly on a third line counting as the middle.
// Names: "top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right".
std::string region_of(const Box& box, int64_t image_size);

// Size words by an object's longer side: small below `small_below` pixels, large above
// `large_above`, otherwise medium (which captions leave unsaid).
struct SizeWords {
  float small_below = 20, large_above = 26;
};
enum class Size { small, medium, large };
Size size_of(const Box& box, const SizeWords& words);
const char* size_name(Size size);

// Question types, in the order of their ids in data files. frame and total are asked of clips
// (describe_clip) only; single-scene files name the first four.
enum class QuestionType : int32_t { count = 0, existence = 1, place = 2, size = 3, frame = 4, total = 5 };
const std::vector<std::string>& question_type_names();
inline constexpr int64_t kSceneQuestionTypes = 4;

struct SceneQuestion {
  std::string question, answer;
  QuestionType type = QuestionType::count;
};

inline constexpr int64_t kCaptionsPerScene = 3;
inline constexpr int64_t kQuestionsPerScene = 8;  // two of each type

struct SceneText {
  // [0] every object, with counts, sizes and places relative to each other; [1] what is there
  // (counts and sizes); [2] one relation between two objects (or one object's place in the image).
  std::vector<std::string> captions;
  // captions[0] with two objects' places swapped, so that it is false of the scene; "" when the
  // scene has no two objects related in captions[0].
  std::string swapped_caption;
  // Scenes: types count, count, existence, existence, place, place, size, size. Clips
  // (describe_clip, no swapped caption): frame, frame, total, total, count, existence, place, size.
  std::vector<SceneQuestion> questions;
};

// What the grammar knows of the classes: a noun per class, from a data set's class names
// ("T-shirt/top" -> "t-shirt", plural "t-shirts"; "Dress" -> "dress", "dresses").
struct Nouns {
  explicit Nouns(const std::vector<std::string>& class_names);
  std::vector<std::string> singular, plural;
  size_t size() const { return singular.size(); }
};

// The captions and questions of a scene. The random choices (which relations, which questions)
// come from the Philox stream (key, stream), so the text is a pure function of its arguments.
SceneText describe_scene(const std::vector<SceneObject>& objects, const Nouns& nouns, const SizeWords& sizes,
                         int64_t image_size, uint64_t key, uint64_t stream);

// The text of a clip: `frames[f]` are the objects of frame f (numbered f + 1 in the text) and
// `frame_texts[f]` what describe_scene said of it. Captions: [0] the objects of all frames by
// class, counted ("in all frames: two bags and a coat."); [1] and [2] frame K's captions[1] and
// captions[2], each of a random frame, "in frame K, " before. Questions, by type: frame, frame,
// total, total, count, existence, place, size; the last four are questions of a random frame K
// (its own question and answer, "in frame K, " before). Random choices come from the stream
// (key, stream), so the text is a pure function of its arguments. docs/DATA.md has the grammar.
// Sizes and places come from the frames' own texts, so it needs neither size words nor the image size.
SceneText describe_clip(const std::vector<std::vector<SceneObject>>& frames, const std::vector<SceneText>& frame_texts,
                        const Nouns& nouns, uint64_t key, uint64_t stream);
// Captions of clips stay within this many bytes with up to 8 frames of up to 4 objects: the
// totals caption falls back to digits for its counts when its words would be longer.
inline constexpr size_t kClipCaptionBytes = 150;

// The text of the mirrored scene: "left" and "right" exchanged as whole words.
std::string mirror_text(const std::string& text);

}  // namespace tessera::data
