#include "data/scene_text.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>

#include "autograd/error.h"
#include "data/random_stream.h"

namespace tessera::data {

// ---------------------------------------------------------------------------------------------
// Geometry

float intersection_over_union(const Box& a, const Box& b) {
  const float h = std::max(0.f, std::min(a.y_max, b.y_max) - std::max(a.y_min, b.y_min));
  const float w = std::max(0.f, std::min(a.x_max, b.x_max) - std::max(a.x_min, b.x_min));
  const float inter = h * w, uni = a.height() * a.width() + b.height() * b.width() - inter;
  return uni > 0 ? inter / uni : 0.f;
}

Place place_of(const Box& a, const Box& b) {
  const float dy = a.center_y() - b.center_y(), dx = a.center_x() - b.center_x();
  if (std::abs(dx) > std::abs(dy)) return dx < 0 ? Place::left_of : Place::right_of;
  if (std::abs(dy) > std::abs(dx)) return dy < 0 ? Place::above : Place::below;
  return Place::none;
}

const char* place_words(Place place) {
  switch (place) {
    case Place::left_of: return "left of";
    case Place::right_of: return "right of";
    case Place::above: return "above";
    case Place::below: return "below";
    case Place::none: break;
  }
  return "";
}

std::string region_of(const Box& box, int64_t image_size) {
  // Compared as 3 (min + max) against 2 and 4 times the size: exact on integer boxes, and a
  // mirrored box lands in the mirrored column.
  const double s = double(image_size);
  auto third = [&](float lo, float hi) { const double t = 3.0 * (double(lo) + double(hi)); return t < 2 * s ? 0 : t > 4 * s ? 2 : 1; };
  static const char* const kNames[3][3] = {{"top left", "top", "top right"},
                                           {"left", "center", "right"},
                                           {"bottom left", "bottom", "bottom right"}};
  return kNames[third(box.y_min, box.y_max)][third(box.x_min, box.x_max)];
}

Size size_of(const Box& box, const SizeWords& words) {
  const float side = box.longer_side();
  return side < words.small_below ? Size::small : side > words.large_above ? Size::large : Size::medium;
}

const char* size_name(Size size) { return size == Size::small ? "small" : size == Size::large ? "large" : "medium"; }

const std::vector<std::string>& question_type_names() {
  static const std::vector<std::string> names{"count", "existence", "place", "size", "frame", "total"};
  return names;
}

// ---------------------------------------------------------------------------------------------
// Words

Nouns::Nouns(const std::vector<std::string>& class_names) {
  for (const std::string& name : class_names) {
    std::string noun = name.substr(0, name.find('/'));
    std::transform(noun.begin(), noun.end(), noun.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    while (!noun.empty() && noun.back() == ' ') noun.pop_back();
    if (noun.empty()) fail("scene text: class name '{}' gives no noun", name);
    auto ends_with = [&](const char* tail) {
      const std::string t(tail);
      return noun.size() >= t.size() && noun.compare(noun.size() - t.size(), t.size(), t) == 0;
    };
    const bool sibilant = ends_with("s") || ends_with("x") || ends_with("z") || ends_with("ch") || ends_with("sh");
    singular.push_back(noun);
    plural.push_back(noun + (sibilant ? "es" : "s"));
  }
}

namespace {

std::string article_for(const std::string& next_word) {
  return std::string(next_word.empty() || !std::strchr("aeiou", next_word[0]) ? "a" : "an");
}

std::string number_word(int64_t n) {
  static const char* const kWords[] = {"no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"};
  return n >= 0 && n <= 10 ? kWords[n] : std::to_string(n);
}

// "a", "a and b", "a, b and c".
std::string join_list(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i == 0 ? "" : i + 1 == items.size() ? " and " : ", ") + items[i];
  return out;
}

std::string region_phrase(const std::string& region) {
  if (region == "center") return "in the center";
  if (region == "top" || region == "bottom") return "at the " + region;
  if (region == "left" || region == "right") return "on the " + region;
  return "in the " + region;
}

// The objects of one class in a scene, in the order they first appear.
struct Group {
  int32_t cls = 0;
  std::vector<size_t> members;
};

class SceneWriter {
 public:
  SceneWriter(const std::vector<SceneObject>& objects, const Nouns& nouns, const SizeWords& sizes, int64_t image_size,
              RandomStream& random)
      : objects_(objects), nouns_(nouns), sizes_(sizes), image_size_(image_size), random_(random) {
    for (size_t i = 0; i < objects.size(); ++i) {
      const int32_t c = objects[i].cls;
      if (c < 0 || size_t(c) >= nouns.size()) fail("scene text: object {} has class {}, outside the {} classes", i, c, nouns.size());
      auto g = std::find_if(groups_.begin(), groups_.end(), [&](const Group& x) { return x.cls == c; });
      if (g == groups_.end()) groups_.push_back({c, {i}});
      else g->members.push_back(i);
    }
  }

  SceneText write() {
    if (objects_.empty()) fail("scene text: a scene needs at least one object");
    SceneText text;
    text.captions = {full_caption(text.swapped_caption), inventory_caption(), relation_caption()};
    using T = QuestionType;
    for (T type : {T::count, T::existence, T::place, T::size}) {
      const SceneQuestion first = question(type);
      SceneQuestion second = question(type);
      for (int retry = 0; retry < 8 && second.question == first.question; ++retry) second = question(type);
      text.questions.push_back(first);
      text.questions.push_back(second);
    }
    std::stable_sort(text.questions.begin(), text.questions.end(),
                     [](const SceneQuestion& a, const SceneQuestion& b) { return a.type < b.type; });
    return text;
  }

 private:
  // --- noun phrases
  int64_t count_of(int32_t cls) const {
    return std::count_if(objects_.begin(), objects_.end(), [&](const SceneObject& o) { return o.cls == cls; });
  }
  std::string with_article(const std::string& words) const { return article_for(words) + " " + words; }
  std::string a_noun(int32_t cls) const { return with_article(nouns_.singular[size_t(cls)]); }
  // "small" or "large" when every object of the group is so, else "".
  std::string group_adjective(const Group& g) const {
    const Size first = size_of(objects_[g.members[0]].box, sizes_);
    for (size_t m : g.members)
      if (size_of(objects_[m].box, sizes_) != first) return "";
    return first == Size::medium ? "" : size_name(first);
  }
  // "a small sneaker", "two bags".
  std::string group_phrase(const Group& g) const {
    const std::string adjective = group_adjective(g);
    const size_t n = g.members.size();
    const std::string noun = n == 1 ? nouns_.singular[size_t(g.cls)] : nouns_.plural[size_t(g.cls)];
    const std::string words = adjective.empty() ? noun : adjective + " " + noun;
    return n == 1 ? with_article(words) : number_word(int64_t(n)) + " " + words;
  }
  std::string object_phrase(size_t i) const {
    const Size s = size_of(objects_[i].box, sizes_);
    const std::string noun = nouns_.singular[size_t(objects_[i].cls)];
    return with_article(s == Size::medium ? noun : std::string(size_name(s)) + " " + noun);
  }
  // Objects by class (class order), counted, without sizes: "two bags and a coat"; "nothing".
  std::string objects_phrase(const std::vector<size_t>& which) const {
    std::vector<std::string> parts;
    for (int32_t c = 0; c < int32_t(nouns_.size()); ++c) {
      const int64_t n = std::count_if(which.begin(), which.end(), [&](size_t i) { return objects_[i].cls == c; });
      if (n == 1) parts.push_back(a_noun(c));
      if (n > 1) parts.push_back(number_word(n) + " " + nouns_.plural[size_t(c)]);
    }
    return parts.empty() ? "nothing" : join_list(parts);
  }

  // The place every object of g has relative to every object of h, or none.
  Place group_place(const Group& g, const Group& h) const {
    const Place p = place_of(objects_[g.members[0]].box, objects_[h.members[0]].box);
    for (size_t a : g.members)
      for (size_t b : h.members)
        if (place_of(objects_[a].box, objects_[b].box) != p) return Place::none;
    return p;
  }

  // --- captions
  // Groups in order of appearance; each after the first placed relative to an earlier one
  // where all of it stands the same way to all of that one ("two bags, a small sneaker below
  // them"). `swapped` gets the same caption with the two groups of one such clause exchanged.
  std::string full_caption(std::string& swapped) const {
    struct Clause {
      size_t group;
      int64_t reference = -1;
      Place place = Place::none;
    };
    std::vector<Clause> clauses;
    std::vector<size_t> related;  // clauses that have a reference
    for (size_t k = 0; k < groups_.size(); ++k) {
      Clause c{k};
      for (int64_t r = int64_t(k) - 1; r >= 0 && c.reference < 0; --r) {
        const Place p = group_place(groups_[k], groups_[size_t(r)]);
        if (p != Place::none) c.reference = r, c.place = p;
      }
      if (c.reference >= 0) related.push_back(k);
      clauses.push_back(c);
    }
    auto render = [&](size_t swap_a, size_t swap_b) {
      auto named = [&](size_t g) -> const Group& { return groups_[g == swap_a ? swap_b : g == swap_b ? swap_a : g]; };
      std::vector<std::string> parts;
      for (size_t k = 0; k < clauses.size(); ++k) {
        const Clause& c = clauses[k];
        std::string part = group_phrase(named(c.group));
        if (c.reference >= 0) {
          const Group& ref = named(size_t(c.reference));
          const bool one = ref.members.size() == 1;
          const std::string ref_words = size_t(c.reference) + 1 == k
                                            ? (one ? "it" : "them")
                                            : "the " + (one ? nouns_.singular : nouns_.plural)[size_t(ref.cls)];
          part += std::string(" ") + place_words(c.place) + " " + ref_words;
        }
        parts.push_back(part);
      }
      std::string out;
      for (size_t i = 0; i < parts.size(); ++i) out += (i ? ", " : "") + parts[i];
      return out + ".";
    };
    swapped.clear();
    if (!related.empty()) {
      const Clause& c = clauses[related[size_t(random_.below(int64_t(related.size())))]];
      swapped = render(c.group, size_t(c.reference));
    }
    return render(SIZE_MAX, SIZE_MAX);
  }

  // "two bags and a small sneaker."
  std::string inventory_caption() const {
    std::vector<const Group*> by_class;
    for (const Group& g : groups_) by_class.push_back(&g);
    std::sort(by_class.begin(), by_class.end(), [](const Group* a, const Group* b) { return a->cls < b->cls; });
    std::vector<std::string> parts;
    for (const Group* g : by_class) parts.push_back(group_phrase(*g));
    return join_list(parts) + ".";
  }

  // "a small bag left of a coat." or, with no related pair of two classes, "a bag in the top left."
  std::string relation_caption() const {
    std::vector<std::pair<size_t, size_t>> pairs;
    for (size_t a = 0; a < objects_.size(); ++a)
      for (size_t b = 0; b < objects_.size(); ++b)
        if (objects_[a].cls != objects_[b].cls && place_of(objects_[a].box, objects_[b].box) != Place::none)
          pairs.emplace_back(a, b);
    if (pairs.empty()) {
      const size_t i = size_t(random_.below(int64_t(objects_.size())));
      return object_phrase(i) + " " + region_phrase(region_of(objects_[i].box, image_size_)) + ".";
    }
    const auto [a, b] = pairs[size_t(random_.below(int64_t(pairs.size())))];
    return object_phrase(a) + " " + place_words(place_of(objects_[a].box, objects_[b].box)) + " " + object_phrase(b) + ".";
  }

  // --- questions
  std::vector<int32_t> classes(bool present) const {
    std::vector<int32_t> out;
    for (int32_t c = 0; c < int32_t(nouns_.size()); ++c)
      if ((count_of(c) > 0) == present) out.push_back(c);
    return out;
  }
  int32_t pick(const std::vector<int32_t>& from) { return from[size_t(random_.below(int64_t(from.size())))]; }
  // A present class or, with probability 1/2 (when there is one), an absent class: questions
  // name absent classes as often as present ones, so "is it there" is never given away.
  int32_t present_or_absent_class() {
    const std::vector<int32_t> absent = classes(false);
    if (random_.chance(0.5) && !absent.empty()) return pick(absent);
    return objects_[size_t(random_.below(int64_t(objects_.size())))].cls;  // by object: repeated classes likelier
  }
  std::vector<size_t> unique_objects() const {
    std::vector<size_t> out;
    for (size_t i = 0; i < objects_.size(); ++i)
      if (count_of(objects_[i].cls) == 1) out.push_back(i);
    return out;
  }

  SceneQuestion question(QuestionType type) {
    switch (type) {
      case QuestionType::count: return count_question();
      case QuestionType::existence: return existence_question();
      case QuestionType::place: return place_question();
      case QuestionType::size: return size_question();
      case QuestionType::frame:
      case QuestionType::total: break;  // clips' types (ClipWriter)
    }
    fail("scene text: unknown question type");
  }

  SceneQuestion count_question() {
    if (random_.chance(0.5)) return {"how many items are there?", std::to_string(objects_.size()), QuestionType::count};
    const int32_t c = present_or_absent_class();
    return {"how many " + nouns_.plural[size_t(c)] + " are there?", std::to_string(count_of(c)), QuestionType::count};
  }

  SceneQuestion existence_question() {
    if (random_.below(3) == 0) {
      const int32_t c = present_or_absent_class();
      return {"is there " + a_noun(c) + "?", count_of(c) > 0 ? "yes" : "no", QuestionType::existence};
    }
    // "is there a coat or a bag?": both, the first, the second or neither, equally often where
    // the scene allows; without two classes present, only one-of-two (so present and absent
    // classes stay equally frequent).
    const std::vector<int32_t> present = classes(true), absent = classes(false);
    const bool can_both = present.size() >= 2, can_neither = absent.size() >= 2, can_one = !absent.empty();
    int outcome = 0;  // 0 both, 1 first, 2 second, 3 neither
    if (!can_one) {
      outcome = 0;
    } else if (!can_both) {
      outcome = 1 + int(random_.below(2));
    } else {
      do outcome = int(random_.below(4));
      while (outcome == 3 && !can_neither);
    }
    int32_t x = 0, y = 0;
    if (outcome == 0) {
      x = pick(present);
      do y = pick(present);
      while (y == x);
    } else if (outcome == 3) {
      x = pick(absent);
      do y = pick(absent);
      while (y == x);
    } else {
      x = pick(present), y = pick(absent);
      if (outcome == 2) std::swap(x, y);
    }
    const std::string answer = outcome == 0 ? "both" : outcome == 3 ? "neither" : a_noun(outcome == 1 ? x : y);
    return {"is there " + a_noun(x) + " or " + a_noun(y) + "?", answer, QuestionType::existence};
  }

  // "what is on the left?", "where is the sneaker?", "what is left of the sneaker?"; the last
  // two need an object named alone (the only one of its class), the last also a second object.
  SceneQuestion place_question() {
    const std::vector<size_t> unique = unique_objects();
    int64_t form = random_.below(3);
    if (form == 2 && objects_.size() < 2) form = 1;
    if (unique.empty()) form = 0;
    if (form == 0) {
      // Mostly a ninth where something is.
      const Box probe = random_.chance(0.75) ? objects_[size_t(random_.below(int64_t(objects_.size())))].box : random_region();
      const std::string region = region_of(probe, image_size_);
      std::vector<size_t> there;
      for (size_t i = 0; i < objects_.size(); ++i)
        if (region_of(objects_[i].box, image_size_) == region) there.push_back(i);
      return {"what is " + region_phrase(region) + "?", objects_phrase(there), QuestionType::place};
    }
    const size_t ref = unique[size_t(random_.below(int64_t(unique.size())))];
    const std::string ref_noun = nouns_.singular[size_t(objects_[ref].cls)];
    if (form == 1) return {"where is the " + ref_noun + "?", region_of(objects_[ref].box, image_size_), QuestionType::place};
    // Mostly a place where something is.
    std::vector<Place> occupied;
    for (size_t i = 0; i < objects_.size(); ++i)
      if (i != ref && place_of(objects_[i].box, objects_[ref].box) != Place::none)
        occupied.push_back(place_of(objects_[i].box, objects_[ref].box));
    const Place place = !occupied.empty() && random_.chance(0.9) ? occupied[size_t(random_.below(int64_t(occupied.size())))]
                                                                 : Place(1 + random_.below(4));
    std::vector<size_t> there;
    for (size_t i = 0; i < objects_.size(); ++i)
      if (i != ref && place_of(objects_[i].box, objects_[ref].box) == place) there.push_back(i);
    return {std::string("what is ") + place_words(place) + " the " + ref_noun + "?", objects_phrase(there),
            QuestionType::place};
  }

  // A box whose centre is in a uniformly chosen ninth of the image.
  Box random_region() {
    const float cell = float(image_size_) / 3.f;
    const float y = cell * float(random_.below(3)) + cell / 2, x = cell * float(random_.below(3)) + cell / 2;
    return Box{y, x, y, x};
  }

  SceneQuestion size_question() {
    std::vector<size_t> order(objects_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return objects_[a].box.longer_side() > objects_[b].box.longer_side(); });
    auto side = [&](size_t i) { return objects_[i].box.longer_side(); };
    // A superlative is asked only when it is clear to the eye: kClearGap pixels ahead of the next.
    const bool largest_clear = order.size() == 1 || side(order[0]) - side(order[1]) >= kClearGap;
    const bool smallest_clear = order.size() == 1 || side(order[order.size() - 2]) - side(order.back()) >= kClearGap;
    if (random_.below(3) < 2) {
      const bool largest = random_.chance(0.5);
      if (largest ? largest_clear : smallest_clear) return superlative(largest, order);
      if (largest ? smallest_clear : largest_clear) return superlative(!largest, order);
    }
    // "is the coat larger than the bag?" between two objects named alone, clearly different.
    const std::vector<size_t> unique = unique_objects();
    std::vector<std::pair<size_t, size_t>> pairs;
    for (size_t a : unique)
      for (size_t b : unique)
        if (a < b && std::abs(side(a) - side(b)) >= kClearGap) pairs.emplace_back(a, b);
    if (!pairs.empty()) {
      auto [a, b] = pairs[size_t(random_.below(int64_t(pairs.size())))];
      if (random_.chance(0.5)) std::swap(a, b);
      return {"is the " + nouns_.singular[size_t(objects_[a].cls)] + " larger than the " +
                  nouns_.singular[size_t(objects_[b].cls)] + "?",
              side(a) > side(b) ? "yes" : "no", QuestionType::size};
    }
    if (!unique.empty()) {
      const size_t i = unique[size_t(random_.below(int64_t(unique.size())))];
      return {"what size is the " + nouns_.singular[size_t(objects_[i].cls)] + "?",
              size_name(size_of(objects_[i].box, sizes_)), QuestionType::size};
    }
    return {"what size is the largest item?", size_name(size_of(objects_[order[0]].box, sizes_)), QuestionType::size};
  }

  SceneQuestion superlative(bool largest, const std::vector<size_t>& order) const {
    const size_t i = largest ? order.front() : order.back();
    return {largest ? "what is the largest item?" : "what is the smallest item?", a_noun(objects_[i].cls), QuestionType::size};
  }

  static constexpr float kClearGap = 3;  // pixels of the longer side

  const std::vector<SceneObject>& objects_;
  const Nouns& nouns_;
  SizeWords sizes_;
  int64_t image_size_;
  RandomStream& random_;
  std::vector<Group> groups_;
};

// The text of a clip from its frames' objects and texts (describe_clip).
class ClipWriter {
 public:
  ClipWriter(const std::vector<std::vector<SceneObject>>& frames, const std::vector<SceneText>& frame_texts,
             const Nouns& nouns, RandomStream& random)
      : frames_(frames), texts_(frame_texts), nouns_(nouns), random_(random), frames_of_(nouns.size()) {
    if (frames.empty() || frames.size() != frame_texts.size())
      fail("clip text: {} frames of objects and {} frame texts; expected the same number, at least one", frames.size(),
           frame_texts.size());
    for (size_t f = 0; f < frames.size(); ++f) {
      if (frames[f].empty()) fail("clip text: frame {} has no objects; every frame needs at least one", f + 1);
      if (texts_[f].captions.size() != size_t(kCaptionsPerScene) || texts_[f].questions.size() != size_t(kQuestionsPerScene))
        fail("clip text: the text of frame {} has {} captions and {} questions, expected a scene's {} and {}", f + 1,
             texts_[f].captions.size(), texts_[f].questions.size(), kCaptionsPerScene, kQuestionsPerScene);
      for (const SceneObject& o : frames[f]) {
        if (o.cls < 0 || size_t(o.cls) >= nouns.size())
          fail("clip text: an object of frame {} has class {}, outside the {} classes", f + 1, o.cls, nouns.size());
        std::vector<int64_t>& seen_in = frames_of_[size_t(o.cls)];
        if (seen_in.empty()) order_.push_back(o.cls);
        if (seen_in.empty() || seen_in.back() != int64_t(f)) seen_in.push_back(int64_t(f));
        all_objects_.push_back(o.cls);
      }
    }
  }

  SceneText write() {
    SceneText text;
    const int64_t first = random_.below(frame_count());
    // Another frame than the first, uniformly, when there is one.
    const int64_t second = frame_count() > 1 ? (first + 1 + random_.below(frame_count() - 1)) % frame_count() : first;
    text.captions = {totals_caption(), in_frame(first) + texts_[size_t(first)].captions[1],
                     in_frame(second) + texts_[size_t(second)].captions[2]};
    const SceneQuestion frame = frame_question(-1);
    text.questions.push_back(frame);
    text.questions.push_back(frame_question(asked_class_));
    const SceneQuestion total = total_question();
    SceneQuestion other = total_question();
    for (int retry = 0; retry < 8 && other.question == total.question; ++retry) other = total_question();
    text.questions.push_back(total);
    text.questions.push_back(other);
    using T = QuestionType;
    for (T type : {T::count, T::existence, T::place, T::size}) text.questions.push_back(question_of_a_frame(type));
    return text;
  }

 private:
  int64_t frame_count() const { return int64_t(frames_.size()); }
  static std::string in_frame(int64_t f) { return "in frame " + std::to_string(f + 1) + ", "; }
  int64_t total_of(int32_t cls) const { return std::count(all_objects_.begin(), all_objects_.end(), cls); }
  std::string a_noun(int32_t cls) const {
    const std::string& noun = nouns_.singular[size_t(cls)];
    return article_for(noun) + " " + noun;
  }
  int32_t pick(const std::vector<int32_t>& from) { return from[size_t(random_.below(int64_t(from.size())))]; }

  // "in all frames: two bags, a sneaker and three dresses.": classes in order of first
  // appearance. Counts are words unless that makes the caption longer than kClipCaptionBytes.
  std::string totals_caption() const {
    auto render = [&](bool digits) {
      std::vector<std::string> parts;
      for (int32_t c : order_) {
        const int64_t n = total_of(c);
        parts.push_back(n == 1 ? a_noun(c) : (digits ? std::to_string(n) : number_word(n)) + " " + nouns_.plural[size_t(c)]);
      }
      return "in all frames: " + join_list(parts) + ".";
    };
    const std::string words = render(false);
    return words.size() <= kClipCaptionBytes ? words : render(true);
  }

  // "in which frame is the bag?" of a class seen in one frame only; without one (but for
  // `avoid`, the class the other frame question asked about), "in which frame does the bag first
  // appear?" of another present class; with no other class at all, `avoid` again.
  SceneQuestion frame_question(int32_t avoid) {
    std::vector<int32_t> alone, repeated;
    for (int32_t c = 0; c < int32_t(nouns_.size()); ++c)
      if (c != avoid && !frames_of_[size_t(c)].empty()) (frames_of_[size_t(c)].size() == 1 ? alone : repeated).push_back(c);
    if (alone.empty() && repeated.empty()) return frame_question(-1);
    const bool only_here = !alone.empty();
    const int32_t c = pick(only_here ? alone : repeated);
    asked_class_ = c;
    const std::string& noun = nouns_.singular[size_t(c)];
    return {only_here ? "in which frame is the " + noun + "?" : "in which frame does the " + noun + " first appear?",
            std::to_string(frames_of_[size_t(c)].front() + 1), QuestionType::frame};
  }

  // "how many bags are there in all frames?": a quarter of the time a class no frame holds (when
  // there is one), else the class of a random object (so repeated classes are likelier).
  SceneQuestion total_question() {
    std::vector<int32_t> absent;
    for (int32_t c = 0; c < int32_t(nouns_.size()); ++c)
      if (frames_of_[size_t(c)].empty()) absent.push_back(c);
    const bool ask_absent = random_.chance(0.25) && !absent.empty();
    const int32_t c = ask_absent ? pick(absent) : all_objects_[size_t(random_.below(int64_t(all_objects_.size())))];
    return {"how many " + nouns_.plural[size_t(c)] + " are there in all frames?", std::to_string(total_of(c)),
            QuestionType::total};
  }

  // One of a random frame's own questions of `type`, as it asked and answered it.
  SceneQuestion question_of_a_frame(QuestionType type) {
    const int64_t f = random_.below(frame_count());
    std::vector<const SceneQuestion*> of_type;
    for (const SceneQuestion& q : texts_[size_t(f)].questions)
      if (q.type == type) of_type.push_back(&q);
    if (of_type.empty()) fail("clip text: frame {} has no question of type {}", f + 1, question_type_names()[size_t(type)]);
    const SceneQuestion& q = *of_type[size_t(random_.below(int64_t(of_type.size())))];
    return {in_frame(f) + q.question, q.answer, type};
  }

  const std::vector<std::vector<SceneObject>>& frames_;
  const std::vector<SceneText>& texts_;
  const Nouns& nouns_;
  RandomStream& random_;
  std::vector<std::vector<int64_t>> frames_of_;  // per class, the frames that hold it, ascending
  std::vector<int32_t> order_;                   // classes in order of first appearance
  std::vector<int32_t> all_objects_;             // the class of every object of every frame
  int32_t asked_class_ = -1;                     // of the latest frame question
};

}  // namespace

SceneText describe_clip(const std::vector<std::vector<SceneObject>>& frames, const std::vector<SceneText>& frame_texts,
                        const Nouns& nouns, uint64_t key, uint64_t stream) {
  RandomStream random(key, stream);
  return ClipWriter(frames, frame_texts, nouns, random).write();
}

SceneText describe_scene(const std::vector<SceneObject>& objects, const Nouns& nouns, const SizeWords& sizes,
                         int64_t image_size, uint64_t key, uint64_t stream) {
  RandomStream random(key, stream);
  return SceneWriter(objects, nouns, sizes, image_size, random).write();
}

std::string mirror_text(const std::string& text) {
  std::string out;
  out.reserve(text.size() + 8);
  size_t i = 0;
  while (i < text.size()) {
    if (!std::isalpha(static_cast<unsigned char>(text[i]))) {
      out += text[i++];
      continue;
    }
    size_t end = i;
    while (end < text.size() && std::isalpha(static_cast<unsigned char>(text[end]))) ++end;
    const std::string word = text.substr(i, end - i);
    out += word == "left" ? "right" : word == "right" ? "left" : word;
    i = end;
  }
  return out;
}

}  // namespace tessera::data
