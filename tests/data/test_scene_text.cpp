// Scene text against its boxes (docs/DATA.md, "Geometry: what the words mean" and "Text: the
// grammar"). This test does not trust data/scene_text: it has its own place, region and size
// definitions, its own nouns and its own parser of the grammar, and checks every caption, the
// swapped caption and every question/answer pair of thousands of scenes against the boxes:
// random scenes with adversarial geometry (ties |dx| = |dy|, centres on third lines, sizes on the
// thresholds, repeated classes, crowded scenes), their mirror images, and scenes made by
// SceneComposer, on which it also measures how far always giving the most common answer gets.
#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "data/dataset.h"
#include "data/scene_import.h"
#include "data/scene_text.h"
#include "data_test_util.h"

using namespace tessera;

namespace {

const std::vector<std::string> kFashionClasses = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                  "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
// What DATA.md's noun rules make of them, written out by hand.
const std::vector<std::string> kSingular = {"t-shirt", "trouser", "pullover", "dress", "coat",
                                            "sandal",  "shirt",   "sneaker",  "bag",   "ankle boot"};
const std::vector<std::string> kPlural = {"t-shirts", "trousers", "pullovers", "dresses", "coats",
                                          "sandals",  "shirts",   "sneakers",  "bags",    "ankle boots"};
const int kClasses = int(kSingular.size());
const std::vector<std::string> kNumberWords = {"", "", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"};
const std::vector<std::string> kRegions = {"top left", "top", "top right", "left", "center", "right",
                                           "bottom left", "bottom", "bottom right"};
constexpr int kClearGap = 3;  // pixels of the longer side before "larger" / "largest" may be said

// A broken statement: what was said, and why it is not true of the boxes.
struct Mismatch : std::runtime_error {
  using std::runtime_error::runtime_error;
};
void expect(bool holds, const std::string& what) {
  if (!holds) throw Mismatch(what);
}

// ---------------------------------------------------------------------------------------------
// The geometry, from DATA.md, on integer boxes (so every comparison is exact)

struct Item {
  int cls = 0;
  int y0 = 0, x0 = 0, y1 = 0, x1 = 0;  // half-open pixel edges
  int longer_side() const { return std::max(y1 - y0, x1 - x0); }
};

enum class Rel { none, left_of, right_of, above, below };
const char* rel_words(Rel rel) {
  switch (rel) {
    case Rel::left_of: return "left of";
    case Rel::right_of: return "right of";
    case Rel::above: return "above";
    case Rel::below: return "below";
    case Rel::none: break;
  }
  return "(none)";
}

// Where a is relative to b: the axis along which the centres are further apart decides; doubled
// centres keep it in integers.
Rel relation(const Item& a, const Item& b) {
  const int dy = (a.y0 + a.y1) - (b.y0 + b.y1), dx = (a.x0 + a.x1) - (b.x0 + b.x1);
  if (std::abs(dx) > std::abs(dy)) return dx < 0 ? Rel::left_of : Rel::right_of;
  if (std::abs(dy) > std::abs(dx)) return dy < 0 ? Rel::above : Rel::below;
  return Rel::none;
}

// 0 first third, 1 middle (a centre on a third line included), 2 last third.
int third(int lo, int hi, int image_size) {
  const int t = 3 * (lo + hi);
  return t < 2 * image_size ? 0 : t > 4 * image_size ? 2 : 1;
}
std::string region(const Item& o, int image_size) {
  const int row = third(o.y0, o.y1, image_size), column = third(o.x0, o.x1, image_size);
  return kRegions[size_t(row * 3 + column)];
}
bool on_a_third_line(const Item& o, int image_size) {
  for (int t : {3 * (o.y0 + o.y1), 3 * (o.x0 + o.x1)})
    if (t == 2 * image_size || t == 4 * image_size) return true;
  return false;
}

// A scene as the test sees it: the objects, the image size and the size words' thresholds.
struct Truth {
  std::vector<Item> items;
  int image_size = 64;
  data::SizeWords words;

  std::string size_word(const Item& o) const {
    const float side = float(o.longer_side());
    return side < words.small_below ? "small" : side > words.large_above ? "large" : "medium";
  }
  std::vector<size_t> members(int cls) const {
    std::vector<size_t> out;
    for (size_t i = 0; i < items.size(); ++i)
      if (items[i].cls == cls) out.push_back(i);
    return out;
  }
  int count(int cls) const { return int(members(cls).size()); }
  std::vector<int> classes_by_appearance() const {
    std::vector<int> out;
    for (const Item& o : items)
      if (std::find(out.begin(), out.end(), o.cls) == out.end()) out.push_back(o.cls);
    return out;
  }
  // Objects per class among `which`.
  std::vector<int> class_counts(const std::vector<size_t>& which) const {
    std::vector<int> out(size_t(kClasses), 0);
    for (size_t i : which) ++out[size_t(items[i].cls)];
    return out;
  }
  // The place every member of class a has relative to every member of class b, or none.
  Rel group_relation(int a, int b) const {
    const std::vector<size_t> as = members(a), bs = members(b);
    const Rel first = relation(items[as[0]], items[bs[0]]);
    for (size_t i : as)
      for (size_t j : bs)
        if (relation(items[i], items[j]) != first) return Rel::none;
    return first;
  }
  // The scene flipped left to right: x -> S - x.
  Truth mirrored() const {
    Truth out = *this;
    for (Item& o : out.items) o = Item{o.cls, o.y0, image_size - o.x1, o.y1, image_size - o.x0};
    return out;
  }
  std::string describe() const {
    std::ostringstream out;
    out << "scene " << image_size << "x" << image_size << ":";
    for (const Item& o : items)
      out << " " << kSingular[size_t(o.cls)] << " (" << o.y0 << "," << o.x0 << "," << o.y1 << "," << o.x1 << ")";
    return out.str();
  }
};

// ---------------------------------------------------------------------------------------------
// A parser of the grammar

class Reader {
 public:
  explicit Reader(std::string_view text) : text_(text) {}
  std::string_view rest() const { return text_.substr(pos_); }
  bool done() const { return pos_ == text_.size(); }
  char peek() const { return done() ? '\0' : text_[pos_]; }
  bool eat(std::string_view s) {
    if (rest().substr(0, s.size()) != s) return false;
    pos_ += s.size();
    return true;
  }
  // Only a whole word: what follows is not a letter or a hyphen.
  bool eat_word(std::string_view word) {
    if (rest().substr(0, word.size()) != word) return false;
    const size_t after = pos_ + word.size();
    if (after < text_.size() && (std::isalpha(static_cast<unsigned char>(text_[after])) || text_[after] == '-'))
      return false;
    pos_ = after;
    return true;
  }
  void need(std::string_view s) { expect(eat(s), "expected '" + std::string(s) + "' at '" + std::string(rest()) + "'"); }
  void need_end() { expect(done(), "unexpected '" + std::string(rest()) + "'"); }

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

// The class whose noun comes next as a whole word, or -1.
int eat_noun(Reader& r, const std::vector<std::string>& nouns) {
  for (int c = 0; c < kClasses; ++c)
    if (r.eat_word(nouns[size_t(c)])) return c;
  return -1;
}
int need_noun(Reader& r, const std::vector<std::string>& nouns) {
  const int c = eat_noun(r, nouns);
  expect(c >= 0, "expected a noun at '" + std::string(r.rest()) + "'");
  return c;
}

// "a" / "an" (checked against the next word's first letter) -> 1; "two" ... "ten" -> n.
int need_count(Reader& r) {
  const bool an = r.eat("an "), a = !an && r.eat("a ");
  if (an || a) {
    const bool vowel = std::string_view("aeiou").find(r.peek()) != std::string_view::npos;
    expect(an == vowel, std::string("wrong article '") + (an ? "an" : "a") + "' before '" + std::string(r.rest()) + "'");
    return 1;
  }
  for (size_t n = 2; n < kNumberWords.size(); ++n)
    if (r.eat(kNumberWords[n] + " ")) return int(n);
  throw Mismatch("expected a count at '" + std::string(r.rest()) + "'");
}

// "a small sneaker", "two bags", "three large coats": size "" when no word is given.
struct Phrase {
  int count = 0;
  std::string size;
  int cls = 0;
};
Phrase need_phrase(Reader& r, bool size_words) {
  Phrase p;
  p.count = need_count(r);
  if (size_words) p.size = r.eat("small ") ? "small" : r.eat("large ") ? "large" : "";
  p.cls = need_noun(r, p.count == 1 ? kSingular : kPlural);
  return p;
}

// "A", "A and B", "A, B and C".
template <class Parse>
auto need_list(Reader& r, Parse parse) {
  std::vector<decltype(parse(r))> items{parse(r)};
  std::string separators;
  for (;;) {
    if (r.eat(", ")) separators += ',';
    else if (r.eat(" and ")) separators += '&';
    else break;
    items.push_back(parse(r));
  }
  for (size_t i = 0; i < separators.size(); ++i)
    expect(separators[i] == (i + 1 == separators.size() ? '&' : ','), "a list not joined as 'A, B and C'");
  return items;
}

// Objects by class, counted, no sizes ("two bags and a coat", "nothing") -> objects per class.
std::vector<int> need_objects(Reader& r) {
  std::vector<int> counts(size_t(kClasses), 0);
  if (r.eat_word("nothing")) return counts;
  int previous = -1;
  for (const Phrase& p : need_list(r, [](Reader& rr) { return need_phrase(rr, false); })) {
    expect(p.cls > previous, "objects not listed once each in class order");
    previous = p.cls;
    counts[size_t(p.cls)] = p.count;
  }
  return counts;
}

std::optional<Rel> eat_place(Reader& r) {
  for (Rel rel : {Rel::left_of, Rel::right_of, Rel::above, Rel::below})
    if (r.eat(std::string(rel_words(rel)) + " ")) return rel;
  return std::nullopt;
}

// "in the center", "at the top", "on the left", "in the top left" ... -> the region's name.
std::optional<std::string> eat_region_phrase(Reader& r) {
  std::string preposition;
  for (const char* p : {"in the ", "at the ", "on the "})
    if (r.eat(p)) preposition = p;
  if (preposition.empty()) return std::nullopt;
  // Corners first: "top" is the start of "top left".
  for (const std::string name : {"top left", "top right", "bottom left", "bottom right", "top", "bottom", "left", "right", "center"})
    if (r.eat_word(name)) {
      const std::string expected = name == "top" || name == "bottom" ? "at the " : name == "left" || name == "right" ? "on the " : "in the ";
      expect(preposition == expected, "'" + preposition + name + "' instead of '" + expected + name + "'");
      return name;
    }
  throw Mismatch("expected a region at '" + std::string(r.rest()) + "'");
}

// ---------------------------------------------------------------------------------------------
// The checks

// How often each form of text was seen, so that a form the generator stopped making shows.
using Coverage = std::map<std::string, int64_t>;

void check_phrase(const Truth& t, const Phrase& p, const std::string& what) {
  const std::vector<size_t> members = t.members(p.cls);
  expect(int(members.size()) == p.count, what + ": count " + std::to_string(p.count) + " of '" + kSingular[size_t(p.cls)] +
                                             "', the scene has " + std::to_string(members.size()));
  std::string common = t.size_word(t.items[members[0]]);
  for (size_t i : members)
    if (t.size_word(t.items[i]) != common) common = "medium";
  expect(p.size == (common == "medium" ? "" : common),
         what + ": size word '" + p.size + "' for '" + kSingular[size_t(p.cls)] + "', the group is " + common);
}

// One clause of captions[0]: a group phrase, and perhaps a place relative to an earlier group.
struct Clause {
  Phrase group;
  std::optional<Rel> place;
  bool ref_previous = false;  // "it" / "them"; else "the <noun>"
  bool ref_plural = false;
  int ref_cls = -1;           // for "the <noun>"
  size_t ref = 0;             // the clause referred to, once resolved
};

std::vector<Clause> parse_full_caption(const std::string& text) {
  Reader r(text);
  std::vector<Clause> clauses;
  do {
    Clause c;
    c.group = need_phrase(r, true);
    if (r.eat(" ")) {
      c.place = eat_place(r);
      expect(c.place.has_value(), "expected a place at '" + std::string(r.rest()) + "'");
      if (r.eat_word("it")) c.ref_previous = true;
      else if (r.eat_word("them")) c.ref_previous = true, c.ref_plural = true;
      else {
        r.need("the ");
        c.ref_cls = eat_noun(r, kSingular);
        if (c.ref_cls < 0) c.ref_cls = need_noun(r, kPlural), c.ref_plural = true;
      }
    }
    clauses.push_back(c);
  } while (r.eat(", "));
  r.need(".");
  r.need_end();
  // "it"/"them" is the group just before; "the bag"/"the bags" an earlier one, by its number.
  for (size_t k = 0; k < clauses.size(); ++k) {
    Clause& c = clauses[k];
    if (!c.place) continue;
    if (c.ref_previous) {
      expect(k > 0, "'it'/'them' with no group before");
      c.ref = k - 1;
    } else {
      auto named = std::find_if(clauses.begin(), clauses.begin() + long(k), [&](const Clause& x) { return x.group.cls == c.ref_cls; });
      expect(named != clauses.begin() + long(k), "'the " + kSingular[size_t(c.ref_cls)] + "' names no earlier group");
      c.ref = size_t(named - clauses.begin());
      expect(c.ref + 1 < k, "'the <noun>' for the group just before, which is 'it'/'them'");
    }
    expect(c.ref_plural == (clauses[c.ref].group.count > 1), "'it'/'them'/'the' of the wrong number for its group");
  }
  return clauses;
}

// Every group once, in order of appearance, each placed relative to the nearest earlier group
// that all of it stands the same way to (when there is one).
void check_full_caption(const Truth& t, const std::vector<Clause>& clauses, Coverage& seen) {
  std::vector<int> order;
  for (const Clause& c : clauses) order.push_back(c.group.cls);
  expect(order == t.classes_by_appearance(), "captions[0]: groups not named once each in order of appearance");
  for (size_t k = 0; k < clauses.size(); ++k) {
    const Clause& c = clauses[k];
    check_phrase(t, c.group, "captions[0]");
    std::optional<size_t> nearest;
    for (size_t r = k; r-- > 0 && !nearest;)
      if (t.group_relation(c.group.cls, clauses[r].group.cls) != Rel::none) nearest = r;
    expect(c.place.has_value() == nearest.has_value(), "captions[0]: group " + std::to_string(k) +
                                                           (c.place ? " placed with no earlier group all one way"
                                                                    : " left unplaced though an earlier group is all one way"));
    if (!c.place) continue;
    expect(c.ref == *nearest, "captions[0]: group " + std::to_string(k) + " not placed relative to the nearest group it can be");
    expect(t.group_relation(c.group.cls, clauses[c.ref].group.cls) == *c.place,
           std::string("captions[0]: '") + rel_words(*c.place) + "' does not hold for every pair");
    seen[c.ref_previous ? (c.ref_plural ? "caption0 them" : "caption0 it") : "caption0 the-noun"]++;
  }
}

// The same caption with the two groups of one related clause exchanged: same places and forms of
// reference, every group phrase still true of its class, and one clause false for every pair.
void check_swapped_caption(const Truth& t, const std::vector<Clause>& original, const std::string& text, Coverage& seen) {
  const bool related = std::any_of(original.begin(), original.end(), [](const Clause& c) { return c.place.has_value(); });
  if (!related) {
    expect(text.empty(), "a swapped caption for a caption that relates no groups");
    return;
  }
  expect(!text.empty(), "no swapped caption though captions[0] relates groups");
  const std::vector<Clause> swapped = parse_full_caption(text);
  expect(swapped.size() == original.size(), "the swapped caption has another number of groups");
  std::vector<size_t> moved;
  for (size_t k = 0; k < swapped.size(); ++k) {
    check_phrase(t, swapped[k].group, "swapped caption");
    if (swapped[k].group.cls != original[k].group.cls) moved.push_back(k);
    expect(swapped[k].place == original[k].place && swapped[k].ref_previous == original[k].ref_previous &&
               (!swapped[k].place || swapped[k].ref == original[k].ref),
           "the swapped caption does not keep the places and references of captions[0]");
  }
  expect(moved.size() == 2 && original[moved[0]].group.cls == swapped[moved[1]].group.cls &&
             original[moved[1]].group.cls == swapped[moved[0]].group.cls,
         "the swapped caption does not exchange exactly two groups");
  expect(original[moved[1]].place && original[moved[1]].ref == moved[0], "the exchanged groups are not those of one clause");
  bool some_clause_false_everywhere = false;
  for (const Clause& c : swapped) {
    if (!c.place) continue;
    bool any_pair_true = false;
    for (size_t a : t.members(c.group.cls))
      for (size_t b : t.members(swapped[c.ref].group.cls)) any_pair_true |= relation(t.items[a], t.items[b]) == *c.place;
    some_clause_false_everywhere |= !any_pair_true;
  }
  expect(some_clause_false_everywhere, "the swapped caption is not false: no clause fails for every pair");
  seen["swapped"]++;
}

// Every group, by class index, with its count and size word.
void check_inventory_caption(const Truth& t, const std::string& text) {
  Reader r(text);
  const std::vector<Phrase> groups = need_list(r, [](Reader& rr) { return need_phrase(rr, true); });
  r.need(".");
  r.need_end();
  std::vector<int> classes = t.classes_by_appearance(), named;
  std::sort(classes.begin(), classes.end());
  for (const Phrase& p : groups) check_phrase(t, p, "captions[1]"), named.push_back(p.cls);
  expect(named == classes, "captions[1]: not every group once, in class order");
}

// "a small bag", "an ankle boot": one object with its own size word.
Phrase need_object(Reader& r) {
  const Phrase p = need_phrase(r, true);
  expect(p.count == 1, "expected one object at '" + std::string(r.rest()) + "'");
  return p;
}
bool matches(const Truth& t, const Item& o, const Phrase& p) {
  const std::string size = t.size_word(o);
  return o.cls == p.cls && p.size == (size == "medium" ? "" : size);
}

// One object relative to one of another class, or (with no such pair) where one object is.
void check_relation_caption(const Truth& t, const std::string& text, Coverage& seen) {
  Reader r(text);
  const Phrase a = need_object(r);
  r.need(" ");
  bool any_pair = false;
  for (const Item& x : t.items)
    for (const Item& y : t.items) any_pair |= x.cls != y.cls && relation(x, y) != Rel::none;
  if (const std::optional<Rel> place = eat_place(r)) {
    const Phrase b = need_object(r);
    bool found = false;
    for (const Item& x : t.items)
      for (const Item& y : t.items) found |= matches(t, x, a) && matches(t, y, b) && x.cls != y.cls && relation(x, y) == *place;
    expect(found, std::string("captions[2]: no such pair '") + rel_words(*place) + "'");
    seen["caption2 pair"]++;
  } else {
    const std::optional<std::string> where = eat_region_phrase(r);
    expect(where.has_value(), "captions[2]: expected a place or a region at '" + std::string(r.rest()) + "'");
    expect(!any_pair, "captions[2]: a region though two objects of different classes are related");
    expect(std::any_of(t.items.begin(), t.items.end(), [&](const Item& o) { return matches(t, o, a) && region(o, t.image_size) == *where; }),
           "captions[2]: no such object in the " + *where);
    seen["caption2 region"]++;
  }
  r.need(".");
  r.need_end();
}

// The one object named alone ("the coat"): its class must have exactly one object.
const Item& only_one(const Truth& t, int cls) {
  const std::vector<size_t> m = t.members(cls);
  expect(m.size() == 1, "'the " + kSingular[size_t(cls)] + "' for a class with " + std::to_string(m.size()) + " objects");
  return t.items[m[0]];
}

int need_single_noun_answer(const std::string& answer) {
  Reader r(answer);
  const Phrase p = need_phrase(r, false);
  r.need_end();
  expect(p.count == 1, "expected 'a <noun>'");
  return p.cls;
}

// The question's type by its form; checks its answer against the boxes.
data::QuestionType check_question(const Truth& t, const std::string& question, const std::string& answer, Coverage& seen) {
  using QT = data::QuestionType;
  const int n = int(t.items.size());
  std::vector<size_t> everything;
  for (size_t i = 0; i < t.items.size(); ++i) everything.push_back(i);
  auto side = [&](size_t i) { return t.items[i].longer_side(); };
  std::vector<size_t> by_side = everything;  // largest first
  std::stable_sort(by_side.begin(), by_side.end(), [&](size_t a, size_t b) { return side(a) > side(b); });
  Reader r(question);

  if (r.eat("how many ")) {
    int expected = n;
    if (r.eat("items")) seen["q count items"]++;
    else expected = t.count(need_noun(r, kPlural)), seen[expected ? "q count present" : "q count absent"]++;
    r.need(" are there?");
    r.need_end();
    expect(answer == std::to_string(expected), "the answer should be " + std::to_string(expected));
    return QT::count;
  }
  if (r.eat("is there ")) {
    const int x = need_phrase(r, false).cls;
    if (r.eat("?")) {
      r.need_end();
      expect(answer == (t.count(x) ? "yes" : "no"), "wrong yes/no");
      seen["q exists"]++;
      return QT::existence;
    }
    r.need(" or ");
    const int y = need_phrase(r, false).cls;
    r.need("?");
    r.need_end();
    expect(x != y, "'is there a X or a X?'");
    const bool has_x = t.count(x) > 0, has_y = t.count(y) > 0;
    if (answer == "both" || answer == "neither") {
      expect(has_x == has_y && has_x == (answer == "both"), "wrong '" + answer + "'");
    } else {
      const int one = need_single_noun_answer(answer);
      expect((one == x && has_x && !has_y) || (one == y && has_y && !has_x), "wrong one of two");
    }
    seen["q exists or: " + std::string(answer == "both" || answer == "neither" ? answer : "one")]++;
    return QT::existence;
  }
  if (r.eat("where is the ")) {
    const Item& o = only_one(t, need_noun(r, kSingular));
    r.need("?");
    r.need_end();
    expect(answer == region(o, t.image_size), "the answer should be " + region(o, t.image_size));
    seen["q where"]++;
    return QT::place;
  }
  if (r.eat("what size is the ")) {
    const Item* o = nullptr;
    if (r.eat("largest item")) o = &t.items[by_side[0]], seen["q size of largest"]++;
    else o = &only_one(t, need_noun(r, kSingular)), seen["q size of"]++;
    r.need("?");
    r.need_end();
    expect(answer == t.size_word(*o), "the answer should be " + t.size_word(*o));
    return QT::size;
  }
  if (r.eat("is the ")) {
    const int x = need_noun(r, kSingular);
    r.need(" larger than the ");
    const int y = need_noun(r, kSingular);
    r.need("?");
    r.need_end();
    const Item &a = only_one(t, x), &b = only_one(t, y);
    expect(x != y && std::abs(a.longer_side() - b.longer_side()) >= kClearGap, "'larger than' between sizes not clearly different");
    expect(answer == (a.longer_side() > b.longer_side() ? "yes" : "no"), "wrong yes/no for 'larger than'");
    seen["q larger than"]++;
    return QT::size;
  }
  r.need("what is ");
  if (r.eat("the largest item?") || r.eat("the smallest item?")) {
    r.need_end();
    const bool largest = question.find("largest") != std::string::npos;
    const size_t extreme = largest ? by_side.front() : by_side.back();
    const size_t runner_up = n == 1 ? extreme : largest ? by_side[1] : by_side[size_t(n - 2)];
    expect(n == 1 || std::abs(side(extreme) - side(runner_up)) >= kClearGap, "a superlative that is not clear");
    expect(need_single_noun_answer(answer) == t.items[extreme].cls, "the answer should be the " + kSingular[size_t(t.items[extreme].cls)]);
    seen[largest ? "q largest" : "q smallest"]++;
    return QT::size;
  }
  std::vector<size_t> there;
  if (const std::optional<std::string> where = eat_region_phrase(r)) {
    for (size_t i : everything)
      if (region(t.items[i], t.image_size) == *where) there.push_back(i);
    seen["q what in region"]++;
  } else {
    const std::optional<Rel> place = eat_place(r);
    expect(place.has_value(), "a question of no known form");
    r.need("the ");
    const int ref_cls = need_noun(r, kSingular);
    const Item& ref = only_one(t, ref_cls);
    expect(n >= 2, "'what is <place> the X?' in a scene of one object");
    for (size_t i : everything)
      if (t.items[i].cls != ref_cls && relation(t.items[i], ref) == *place) there.push_back(i);
    seen["q what at place"]++;
  }
  r.need("?");
  r.need_end();
  Reader answer_reader(answer);
  const std::vector<int> said = need_objects(answer_reader);
  answer_reader.need_end();
  expect(said == t.class_counts(there), "the objects named are not exactly those there");
  seen[there.empty() ? "q place nothing" : "q place something"]++;
  return QT::place;
}

// Everything describe_scene says of a scene, checked against the boxes.
void check_scene_text(const Truth& t, const data::SceneText& text, Coverage& seen) {
  expect(text.captions.size() == 3 && text.questions.size() == 8, "not 3 captions and 8 questions");
  const std::vector<Clause> clauses = parse_full_caption(text.captions[0]);
  check_full_caption(t, clauses, seen);
  check_swapped_caption(t, clauses, text.swapped_caption, seen);
  check_inventory_caption(t, text.captions[1]);
  check_relation_caption(t, text.captions[2], seen);
  for (size_t q = 0; q < text.questions.size(); ++q) {
    const data::SceneQuestion& sq = text.questions[q];
    const data::QuestionType form = check_question(t, sq.question, sq.answer, seen);
    expect(sq.type == form, "question " + std::to_string(q) + " of the wrong type");
    expect(int(sq.type) == int(q / 2), "question types not [count, count, existence, existence, place, place, size, size]");
  }
}

data::SceneText mirrored_text(const data::SceneText& text) {
  data::SceneText out = text;
  for (std::string& c : out.captions) c = data::mirror_text(c);
  out.swapped_caption = data::mirror_text(out.swapped_caption);
  for (data::SceneQuestion& q : out.questions) q.question = data::mirror_text(q.question), q.answer = data::mirror_text(q.answer);
  return out;
}

std::string describe(const Truth& t, const data::SceneText& text) {
  std::string out = t.describe() + "\n  captions: ";
  for (const std::string& c : text.captions) out += "\"" + c + "\" ";
  out += "\n  swapped: \"" + text.swapped_caption + "\"\n";
  for (const data::SceneQuestion& q : text.questions)
    out += "  [" + std::to_string(int(q.type)) + "] " + q.question + " -> " + q.answer + "\n";
  return out;
}

// Checks one scene; a mismatch is reported with the scene (the first few in full).
void check_reporting(const Truth& t, const data::SceneText& text, Coverage& seen, int64_t& failures, const std::string& label) {
  try {
    check_scene_text(t, text, seen);
  } catch (const Mismatch& e) {
    if (failures++ < 5) BOOST_ERROR(label << ": " << e.what() << "\n" << describe(t, text));
  }
}

std::vector<data::SceneObject> scene_objects(const Truth& t) {
  std::vector<data::SceneObject> out;
  for (const Item& o : t.items) out.push_back({o.cls, data::Box{float(o.y0), float(o.x0), float(o.y1), float(o.x1)}});
  return out;
}

// ---------------------------------------------------------------------------------------------
// Scenes that go looking for trouble

class SceneMaker {
 public:
  explicit SceneMaker(uint64_t seed) : rng_(seed) {}

  Truth make() {
    Truth t;
    t.image_size = pick({64, 64, 48, 63});  // 48 and 63: integer centres can sit on a third line
    const int style = between(0, 5);  // 4: all one class; 5: crowded, up to 12 objects
    const int n = style == 5 ? between(6, 12) : between(1, 5);
    std::vector<int> classes;
    if (style == 4) {
      classes.assign(size_t(n), between(0, kClasses - 1));  // all one class
    } else if (n >= kClasses && chance(0.5)) {
      for (int c = 0; c < kClasses; ++c) classes.push_back(c);  // every class present
      std::shuffle(classes.begin(), classes.end(), rng_);
      while (int(classes.size()) < n) classes.push_back(classes[size_t(between(0, int(classes.size()) - 1))]);
    } else {
      for (int k = 0; k < n; ++k)
        classes.push_back(k > 0 && chance(0.45) ? classes[size_t(between(0, k - 1))] : between(0, kClasses - 1));
    }
    for (int k = 0; k < n; ++k) t.items.push_back(make_item(t, classes[size_t(k)]));
    return t;
  }

 private:
  // A box given its doubled centre and sides: each side's parity follows the centre's, so the
  // centre is exact, and sides shrink to fit in the image.
  static std::pair<int, int> span(int center2, int side, int image_size) {
    side = std::max(1, std::min({side, center2, 2 * image_size - center2}));
    if ((center2 - side) % 2 != 0) side = side > 1 ? side - 1 : side + 1;
    return {(center2 - side) / 2, (center2 + side) / 2};
  }

  Item make_item(const Truth& t, int cls) {
    const int s = t.image_size;
    const Item* earlier = t.items.empty() ? nullptr : &t.items[size_t(between(0, int(t.items.size()) - 1))];
    // Centres (doubled): anywhere, on or next to a third line, on a coarse grid (ties |dx| = |dy|
    // and equal centres), or diagonal from an earlier object.
    int cy2 = between(2, 2 * s - 2), cx2 = between(2, 2 * s - 2);
    switch (between(0, 3)) {
      case 0: break;
      case 1: {
        const int line2 = pick({2, 4}) * s / 3;  // doubled centre on a third line (exact when 3 divides s)
        (chance(0.5) ? cy2 : cx2) = line2 + pick({0, 0, 0, -1, 1});
        break;
      }
      case 2: cy2 = 8 * between(1, s / 4 - 1), cx2 = 8 * between(1, s / 4 - 1); break;
      case 3:
        if (earlier) {
          const int d = 2 * between(0, s / 3);
          cy2 = std::clamp(earlier->y0 + earlier->y1 + (chance(0.5) ? d : -d), 2, 2 * s - 2);
          cx2 = std::clamp(earlier->x0 + earlier->x1 + (chance(0.5) ? d : -d), 2, 2 * s - 2);
        }
        break;
    }
    // Sides: anywhere, on the size words' thresholds, or an earlier object's (same size, or just
    // inside / outside the clear gap).
    int longer = between(4, s / 2), shorter = between(2, longer);
    switch (between(0, 2)) {
      case 0: break;
      case 1:
        longer = pick({int(t.words.small_below) - 1, int(t.words.small_below), int(t.words.small_below) + 1,
                       int(t.words.large_above) - 1, int(t.words.large_above), int(t.words.large_above) + 1});
        shorter = between(2, longer);
        break;
      case 2:
        if (earlier) longer = std::max(2, earlier->longer_side() + pick({0, 0, -2, 2, -3, 3})), shorter = between(2, longer);
        break;
    }
    if (chance(0.5)) std::swap(longer, shorter);
    const auto [y0, y1] = span(cy2, longer, s);
    const auto [x0, x1] = span(cx2, shorter, s);
    return Item{cls, y0, x0, y1, x1};
  }

  int between(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  int pick(std::initializer_list<int> values) { return *(values.begin() + between(0, int(values.size()) - 1)); }

  std::mt19937_64 rng_;
};

// ---------------------------------------------------------------------------------------------
// Items to compose scenes from: gray blobs of varied shapes and aspects, 28x28, one class each

void write_blob_items(const std::string& path, int per_class) {
  std::mt19937 rng(7);
  auto between = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::vector<uint8_t> images;
  std::vector<int64_t> labels;
  for (int c = 0; c < kClasses; ++c)
    for (int k = 0; k < per_class; ++k) {
      const int h = between(6, 28), w = between(6, 28), top = between(0, 28 - h), left = between(0, 28 - w), shape = (c + k) % 3;
      const uint8_t ink = uint8_t(between(60, 255));
      for (int y = 0; y < 28; ++y)
        for (int x = 0; x < 28; ++x) {
          const double u = (y - top + 0.5) / h, v = (x - left + 0.5) / w;  // 0..1 inside the blob's box
          const bool inside = u > 0 && u < 1 && v > 0 && v < 1 &&
                              (shape == 0 ? true                                                         // rectangle
                               : shape == 1 ? (u - 0.5) * (u - 0.5) + (v - 0.5) * (v - 0.5) <= 0.25      // ellipse
                                            : std::abs(v - 0.5) <= u / 2);                               // triangle
          images.push_back(inside ? ink : 0);
        }
      labels.push_back(c);
    }
  data::DatasetWriter writer(path, 28, 28, 1, kFashionClasses);
  writer.append(images.data(), int64_t(labels.size()), labels.data());
  writer.close();
}

// The classes a count or existence question names: "how many coats are there?" one, "is there a
// coat or a bag?" two, "how many items are there?" none.
std::vector<int> classes_named(const std::string& question) {
  Reader r(question);
  std::vector<int> out;
  if (r.eat("how many ")) {
    if (!r.eat("items")) out.push_back(need_noun(r, kPlural));
  } else {
    r.need("is there ");
    out.push_back(need_phrase(r, false).cls);
    if (r.eat(" or ")) out.push_back(need_phrase(r, false).cls);
  }
  return out;
}

Truth truth_of(const data::Scene& scene, int image_size, const data::SizeWords& words) {
  Truth t;
  t.image_size = image_size;
  t.words = words;
  for (const data::SceneObject& o : scene.objects) {
    const Item item{o.cls, int(o.box.y_min), int(o.box.x_min), int(o.box.y_max), int(o.box.x_max)};
    BOOST_REQUIRE(float(item.y0) == o.box.y_min && float(item.x0) == o.box.x_min && float(item.y1) == o.box.y_max &&
                  float(item.x1) == o.box.x_max);
    t.items.push_back(item);
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// Clips: frames of scenes and the text about all of them (describe_clip)

using Clip = std::vector<Truth>;

// Digits as a whole number ("3", "12"), no leading zero.
int need_number(Reader& r) {
  std::string digits;
  while (std::isdigit(static_cast<unsigned char>(r.peek()))) {
    digits += r.peek();
    r.eat(digits.substr(digits.size() - 1));
  }
  expect(!digits.empty() && digits.size() < 6 && (digits.size() == 1 || digits[0] != '0'),
         "expected a number at '" + std::string(r.rest()) + "'");
  return std::stoi(digits);
}

int number_answer(const std::string& answer) {
  Reader r(answer);
  const int n = need_number(r);
  r.need_end();
  return n;
}

int clip_total(const Clip& clip, int cls) {
  int n = 0;
  for (const Truth& t : clip) n += t.count(cls);
  return n;
}

// The frames (from 0) that hold class cls.
std::vector<int> frames_holding(const Clip& clip, int cls) {
  std::vector<int> out;
  for (size_t f = 0; f < clip.size(); ++f)
    if (clip[f].count(cls) > 0) out.push_back(int(f));
  return out;
}

std::vector<int> clip_classes_by_appearance(const Clip& clip) {
  std::vector<int> out;
  for (const Truth& t : clip)
    for (const Item& o : t.items)
      if (std::find(out.begin(), out.end(), o.cls) == out.end()) out.push_back(o.cls);
  return out;
}

// "in frame K, <rest>": K (1..F) and the rest.
std::pair<int, std::string> need_frame_prefix(const std::string& text, size_t frames) {
  Reader r(text);
  r.need("in frame ");
  const int k = need_number(r);
  r.need(", ");
  expect(k >= 1 && k <= int(frames), "frame " + std::to_string(k) + " of a clip of " + std::to_string(frames));
  return {k, std::string(r.rest())};
}

// The totals caption as this test would write it in words, to check when digits are due.
size_t totals_caption_in_words_bytes(const Clip& clip) {
  std::vector<std::string> parts;
  for (int c : clip_classes_by_appearance(clip)) {
    const int n = clip_total(clip, c);
    const std::string& noun = kSingular[size_t(c)];
    if (n == 1) parts.push_back((std::string("aeiou").find(noun[0]) != std::string::npos ? "an " : "a ") + noun);
    else parts.push_back((n <= 10 ? kNumberWords[size_t(n)] : std::to_string(n)) + " " + kPlural[size_t(c)]);
  }
  size_t bytes = std::string("in all frames: ").size() + 1;  // and the full stop
  for (size_t i = 0; i < parts.size(); ++i) bytes += parts[i].size() + (i == 0 ? 0 : i + 1 == parts.size() ? 5 : 2);
  return bytes;
}

// "in all frames: two bags, a coat and 3 dresses.": every class of the clip once, in order of first
// appearance, with its count over all frames; words unless they would pass 150 bytes.
void check_totals_caption(const Clip& clip, const std::string& text, Coverage& seen) {
  expect(text.size() <= 150, "captions[0] is " + std::to_string(text.size()) + " bytes, more than 150");
  Reader r(text);
  r.need("in all frames: ");
  bool digits = false;
  const std::vector<Phrase> parts = need_list(r, [&](Reader& rr) {
    Phrase p;
    if (std::isdigit(static_cast<unsigned char>(rr.peek()))) {
      p.count = need_number(rr);
      rr.need(" ");
      expect(p.count >= 2, "a count of one in digits");
      digits |= p.count <= 10;
    } else {
      p.count = need_count(rr);
    }
    p.cls = need_noun(rr, p.count == 1 ? kSingular : kPlural);
    return p;
  });
  r.need(".");
  r.need_end();
  std::vector<int> named;
  for (const Phrase& p : parts) {
    named.push_back(p.cls);
    expect(p.count == clip_total(clip, p.cls), "captions[0]: " + std::to_string(p.count) + " " + kPlural[size_t(p.cls)] +
                                                   ", the clip has " + std::to_string(clip_total(clip, p.cls)));
  }
  expect(named == clip_classes_by_appearance(clip), "captions[0]: not every class once in order of first appearance");
  expect(digits == (totals_caption_in_words_bytes(clip) > 150), digits ? "captions[0] in digits though words fit"
                                                                       : "captions[0] in words past 150 bytes");
  seen[digits ? "clip totals in digits" : "clip totals in words"]++;
}

// "in which frame is the X?" (X in that frame only) or, when no class but `avoid` is in just one
// frame, "in which frame does the X first appear?". Returns the class asked about.
int check_frame_question(const Clip& clip, const std::string& question, const std::string& answer, int avoid, Coverage& seen) {
  Reader r(question);
  r.need("in which frame ");
  const int k = number_answer(answer);
  expect(k >= 1 && k <= int(clip.size()), "answer frame " + answer + " of a clip of " + std::to_string(clip.size()));
  int cls = -1;
  if (r.eat("is the ")) {
    cls = need_noun(r, kSingular);
    r.need("?");
    expect(frames_holding(clip, cls) == std::vector<int>{k - 1}, "the " + kSingular[size_t(cls)] + " is not in frame " + answer + " alone");
    seen["clip q frame alone"]++;
  } else {
    r.need("does the ");
    cls = need_noun(r, kSingular);
    r.need(" first appear?");
    const std::vector<int> holding = frames_holding(clip, cls);
    expect(!holding.empty() && holding.front() == k - 1, "the " + kSingular[size_t(cls)] + " does not first appear in frame " + answer);
    for (int c = 0; c < kClasses; ++c)
      expect(c == avoid || frames_holding(clip, c).size() != 1, "'first appear' though the " + kSingular[size_t(c)] + " is in one frame alone");
    seen["clip q frame first"]++;
  }
  r.need_end();
  return cls;
}

// Everything describe_clip says, against the frames' boxes, with the frames' own texts for the
// parts it takes from them.
void check_clip_text(const Clip& clip, const std::vector<data::SceneText>& frame_texts, const data::SceneText& text, Coverage& seen) {
  const size_t frames = clip.size();
  expect(text.captions.size() == 3 && text.questions.size() == 8, "not 3 captions and 8 questions");
  expect(text.swapped_caption.empty(), "a clip with a swapped caption");
  check_totals_caption(clip, text.captions[0], seen);
  const auto [k1, inventory] = need_frame_prefix(text.captions[1], frames);
  const auto [k2, relation] = need_frame_prefix(text.captions[2], frames);
  expect(frames == 1 || k1 != k2, "captions[1] and [2] of the same frame");
  expect(inventory == frame_texts[size_t(k1 - 1)].captions[1], "captions[1] is not frame " + std::to_string(k1) + "'s captions[1]");
  expect(relation == frame_texts[size_t(k2 - 1)].captions[2], "captions[2] is not frame " + std::to_string(k2) + "'s captions[2]");
  check_inventory_caption(clip[size_t(k1 - 1)], inventory);
  check_relation_caption(clip[size_t(k2 - 1)], relation, seen);

  using QT = data::QuestionType;
  const std::vector<QT> types{QT::frame, QT::frame, QT::total, QT::total, QT::count, QT::existence, QT::place, QT::size};
  for (size_t q = 0; q < 8; ++q) expect(text.questions[q].type == types[q], "question " + std::to_string(q) + " of the wrong type");
  const int first = check_frame_question(clip, text.questions[0].question, text.questions[0].answer, -1, seen);
  const int second = check_frame_question(clip, text.questions[1].question, text.questions[1].answer, first, seen);
  expect(second != first || clip_classes_by_appearance(clip).size() == 1, "the two frame questions ask about one class");
  for (size_t q = 2; q < 4; ++q) {
    Reader r(text.questions[q].question);
    r.need("how many ");
    const int cls = need_noun(r, kPlural);
    r.need(" are there in all frames?");
    r.need_end();
    expect(text.questions[q].answer == std::to_string(clip_total(clip, cls)),
           "the answer should be " + std::to_string(clip_total(clip, cls)));
    seen[clip_total(clip, cls) ? "clip q total present" : "clip q total absent"]++;
  }
  for (size_t q = 4; q < 8; ++q) {
    const data::SceneQuestion& sq = text.questions[q];
    const auto [k, rest] = need_frame_prefix(sq.question, frames);
    const std::string asked = rest;  // a named copy: clang 15 lambdas cannot capture structured bindings
    expect(check_question(clip[size_t(k - 1)], asked, sq.answer, seen) == sq.type, "question " + std::to_string(q) + " of another form");
    const auto& own = frame_texts[size_t(k - 1)].questions;
    expect(std::any_of(own.begin(), own.end(), [&](const data::SceneQuestion& o) {
             return o.question == asked && o.answer == sq.answer && o.type == sq.type;
           }),
           "question " + std::to_string(q) + " is not one of frame " + std::to_string(k) + "'s own");
  }
}

std::string clip_report(const Clip& clip, const data::SceneText& text) {
  std::string out;
  for (size_t f = 0; f < clip.size(); ++f) out += "frame " + std::to_string(f + 1) + ": " + clip[f].describe() + "\n";
  out += "  captions: ";
  for (const std::string& c : text.captions) out += "\"" + c + "\" ";
  out += "\n";
  for (const data::SceneQuestion& q : text.questions)
    out += "  [" + std::to_string(int(q.type)) + "] " + q.question + " -> " + q.answer + "\n";
  return out;
}

void check_clip_reporting(const Clip& clip, const std::vector<data::SceneText>& frame_texts, const data::SceneText& text,
                          Coverage& seen, int64_t& failures, const std::string& label) {
  try {
    check_clip_text(clip, frame_texts, text, seen);
  } catch (const Mismatch& e) {
    if (failures++ < 5) BOOST_ERROR(label << ": " << e.what() << "\n" << clip_report(clip, text));
  }
}

// A clip's frames, their texts and the clip's text, as describe_scene and describe_clip make them.
struct ClipText {
  std::vector<data::SceneText> frames;
  data::SceneText clip;
};
ClipText clip_text_of(const Clip& clip, const data::Nouns& nouns, uint64_t key, uint64_t stream) {
  ClipText out;
  std::vector<std::vector<data::SceneObject>> objects;
  for (size_t f = 0; f < clip.size(); ++f) {
    objects.push_back(scene_objects(clip[f]));
    out.frames.push_back(data::describe_scene(objects.back(), nouns, clip[f].words, clip[f].image_size, key,
                                              (stream << 8) | f));
  }
  out.clip = data::describe_clip(objects, out.frames, nouns, key, ~stream);
  return out;
}

// Clips of 1 to 8 random scenes; a third of them show every scene twice in a row, so that no
// class is in one frame alone.
Clip make_clip(SceneMaker& maker, std::mt19937_64& rng) {
  const int frames = std::array<int, 5>{1, 2, 3, 4, 8}[std::uniform_int_distribution<size_t>(0, 4)(rng)];
  const bool doubled = frames % 2 == 0 && std::bernoulli_distribution(1.0 / 3)(rng);
  Clip clip;
  while (int(clip.size()) < frames) {
    clip.push_back(maker.make());
    if (doubled) clip.push_back(clip.back());
  }
  return clip;
}

Clip mirrored(const Clip& clip) {
  Clip out;
  for (const Truth& t : clip) out.push_back(t.mirrored());
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(scene_text)

BOOST_AUTO_TEST_CASE(nouns_are_lower_case_cut_at_the_slash_with_regular_plurals) {
  const data::Nouns nouns(kFashionClasses);
  BOOST_TEST(nouns.singular == kSingular, boost::test_tools::per_element());
  BOOST_TEST(nouns.plural == kPlural, boost::test_tools::per_element());
  const data::Nouns sibilants({"Box", "Watch", "Brush", "Glass", "Quiz", "Hat/Cap"});
  BOOST_TEST(sibilants.plural == std::vector<std::string>({"boxes", "watches", "brushes", "glasses", "quizes", "hats"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(every_statement_is_true_of_random_scenes_and_of_their_mirror_images) {
  const data::Nouns nouns(kFashionClasses);
  SceneMaker maker(2024);
  Coverage seen;
  int64_t failures = 0, placeless_pairs = 0, on_third_lines = 0;
  const int scenes = 6000;
  for (int i = 0; i < scenes; ++i) {
    const Truth t = maker.make();
    const data::SceneText text = data::describe_scene(scene_objects(t), nouns, t.words, t.image_size, 11, uint64_t(i));
    check_reporting(t, text, seen, failures, "scene " + std::to_string(i));
    Coverage mirror_seen;
    check_reporting(t.mirrored(), mirrored_text(text), mirror_seen, failures, "mirrored scene " + std::to_string(i));
    for (const Item& a : t.items) {
      on_third_lines += on_a_third_line(a, t.image_size);
      for (const Item& b : t.items)
        placeless_pairs += &a != &b && relation(a, b) == Rel::none;
    }
  }
  BOOST_TEST(failures == 0);
  for (const auto& [form, n] : seen) BOOST_TEST_MESSAGE(form << ": " << n);
  BOOST_TEST_MESSAGE("pairs without a place: " << placeless_pairs << ", centres on a third line: " << on_third_lines);
  // The scenes did go looking for trouble, and every form of text was met.
  BOOST_TEST(placeless_pairs > scenes / 20);
  BOOST_TEST(on_third_lines > scenes / 20);
  for (const char* form : {"caption0 it", "caption0 them", "caption0 the-noun", "swapped", "caption2 pair", "caption2 region",
                           "q count items", "q count present", "q count absent", "q exists", "q exists or: both",
                           "q exists or: one", "q exists or: neither", "q where", "q what in region", "q what at place",
                           "q place nothing", "q place something", "q largest", "q smallest", "q larger than", "q size of",
                           "q size of largest"})
    BOOST_TEST(seen[form] > 10, form << " seen " << seen[form] << " times");
}

BOOST_AUTO_TEST_CASE(the_checker_rejects_false_text) {
  // A test that cannot fail proves nothing: break one statement at a time and see it caught.
  const data::Nouns nouns(kFashionClasses);
  SceneMaker maker(99);
  std::map<std::string, int> broken, caught;
  for (int i = 0; i < 1000; ++i) {
    const Truth t = maker.make();
    const data::SceneText text = data::describe_scene(scene_objects(t), nouns, t.words, t.image_size, 5, uint64_t(i));
    std::vector<std::pair<std::string, data::SceneText>> lies;
    if (!text.swapped_caption.empty()) {
      lies.emplace_back("swapped caption as captions[0]", text);
      lies.back().second.captions[0] = text.swapped_caption;
    }
    const std::string& count_answer = text.questions[0].answer;
    lies.emplace_back("count answer + 1", text);
    lies.back().second.questions[0].answer = std::to_string(std::stoi(count_answer) + 1);
    for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{{"small ", "large "}, {"large ", "small "}})
      if (const size_t at = text.captions[1].find(from); at != std::string::npos) {
        lies.emplace_back("size word in captions[1]", text);
        lies.back().second.captions[1].replace(at, from.size(), to);
      }
    for (size_t q = 4; q < 6; ++q)
      if (text.questions[q].answer == "nothing") {
        lies.emplace_back("something where there is nothing", text);
        lies.back().second.questions[q].answer = "a bag";
      }
    lies.emplace_back("the text of the mirror image", mirrored_text(text));
    for (const auto& [what, lie] : lies) {
      Coverage ignored;
      broken[what]++;
      try {
        check_scene_text(t, lie, ignored);
      } catch (const Mismatch&) {
        caught[what]++;
      }
    }
  }
  for (const auto& [what, n] : broken) BOOST_TEST_MESSAGE(what << ": caught " << caught[what] << " of " << n);
  // Every lie that must be false is caught; the mirror image's text is sometimes still true of
  // the scene ("a coat above a bag"), but must not pass as a rule.
  for (const char* what : {"swapped caption as captions[0]", "count answer + 1", "size word in captions[1]",
                           "something where there is nothing"}) {
    BOOST_TEST(broken[what] > 20, what);
    BOOST_TEST(caught[what] == broken[what], what << ": caught " << caught[what] << " of " << broken[what]);
  }
  BOOST_TEST(caught["the text of the mirror image"] > broken["the text of the mirror image"] / 2);
}

BOOST_AUTO_TEST_CASE(composed_scenes_are_true_and_text_alone_scores_under_forty_percent) {
  data::testing::TempDir dir;
  write_blob_items(dir.file("items.h5"), 12);
  const data::SceneOptions options;
  const data::SceneComposer composer(data::Dataset::open(dir.file("items.h5")), options, 0);
  const data::SizeWords words = options.size_words();
  std::vector<std::map<std::string, int64_t>> answers(4);
  int64_t failures = 0;
  std::map<std::string, int64_t> named_by_type, absent_by_type;
  Coverage seen;
  const int scenes = 4000;
  for (int i = 0; i < scenes; ++i) {
    const data::Scene scene = composer.make(i);
    const Truth t = truth_of(scene, int(options.size), words);
    check_reporting(t, scene.text, seen, failures, "composed scene " + std::to_string(i));
    for (const data::SceneQuestion& q : scene.text.questions) {
      answers[size_t(q.type)][q.answer]++;
      if (q.type != data::QuestionType::count && q.type != data::QuestionType::existence) continue;
      const std::string type = data::question_type_names()[size_t(q.type)];
      for (int c : classes_named(q.question)) named_by_type[type]++, absent_by_type[type] += t.count(c) == 0;
    }
  }
  BOOST_TEST(failures == 0);
  for (size_t type = 0; type < answers.size(); ++type) {
    int64_t total = 0, most = 0;
    std::string most_common;
    for (const auto& [answer, n] : answers[type]) {
      total += n;
      if (n > most) most = n, most_common = answer;
    }
    const double share = double(most) / double(total);
    BOOST_TEST_MESSAGE(data::question_type_names()[type] << ": " << total << " questions, most common answer '" << most_common
                                                           << "' " << share);
    BOOST_TEST(total == 2 * scenes);
    BOOST_TEST(share < 0.40, data::question_type_names()[type] << ": '" << most_common << "' is " << share << " of the answers");
  }
  for (const char* type : {"count", "existence"}) {
    const double absent = double(absent_by_type[type]) / double(named_by_type[type]);
    BOOST_TEST_MESSAGE(type << ": " << named_by_type[type] << " classes named, " << absent << " absent");
    BOOST_TEST(named_by_type[type] > 1000);
    BOOST_TEST(absent >= 0.45);
    BOOST_TEST(absent <= 0.55);
  }
}

BOOST_AUTO_TEST_CASE(the_text_is_a_function_of_objects_key_and_stream) {
  const data::Nouns nouns(kFashionClasses);
  SceneMaker maker(3);
  auto flat = [](const data::SceneText& text) {
    std::string out = text.swapped_caption;
    for (const std::string& c : text.captions) out += "|" + c;
    for (const data::SceneQuestion& q : text.questions) out += "|" + q.question + "=" + q.answer + "/" + std::to_string(int(q.type));
    return out;
  };
  for (int i = 0; i < 20; ++i) {
    Truth t = maker.make();
    while (t.items.size() < 3) t = maker.make();
    const std::vector<data::SceneObject> objects = scene_objects(t);
    std::set<std::string> variants;
    for (uint64_t stream = 0; stream < 16; ++stream) {
      const std::string once = flat(data::describe_scene(objects, nouns, t.words, t.image_size, 42, stream));
      BOOST_TEST(once == flat(data::describe_scene(objects, nouns, t.words, t.image_size, 42, stream)));
      variants.insert(once);
    }
    BOOST_TEST(variants.size() >= 12, "only " << variants.size() << " different texts from 16 streams");
    BOOST_TEST(flat(data::describe_scene(objects, nouns, t.words, t.image_size, 42, 0)) !=
               flat(data::describe_scene(objects, nouns, t.words, t.image_size, 43, 0)));
  }
}

BOOST_AUTO_TEST_CASE(clip_text_is_true_of_random_clips_and_of_their_mirror_images) {
  const data::Nouns nouns(kFashionClasses);
  SceneMaker maker(77);
  std::mt19937_64 rng(78);
  Coverage seen;
  int64_t failures = 0;
  const int clips = 1500;
  for (int i = 0; i < clips; ++i) {
    const Clip clip = make_clip(maker, rng);
    const ClipText text = clip_text_of(clip, nouns, 13, uint64_t(i));
    check_clip_reporting(clip, text.frames, text.clip, seen, failures, "clip " + std::to_string(i));
    // A flipped clip: every frame mirrored, and its text (and its frames') mirrored once.
    std::vector<data::SceneText> frames_mirrored;
    for (const data::SceneText& t : text.frames) frames_mirrored.push_back(mirrored_text(t));
    Coverage mirror_seen;
    check_clip_reporting(mirrored(clip), frames_mirrored, mirrored_text(text.clip), mirror_seen, failures,
                         "mirrored clip " + std::to_string(i));
  }
  BOOST_TEST(failures == 0);
  for (const auto& [form, n] : seen) BOOST_TEST_MESSAGE(form << ": " << n);
  for (const char* form : {"clip totals in words", "clip q frame alone", "clip q frame first", "clip q total present",
                           "clip q total absent", "q count items", "q exists", "q where", "q largest"})
    BOOST_TEST(seen[form] > 20, form << " seen " << seen[form] << " times");
}

BOOST_AUTO_TEST_CASE(the_clip_checker_rejects_false_clip_text) {
  const data::Nouns nouns(kFashionClasses);
  SceneMaker maker(5);
  std::mt19937_64 rng(6);
  std::map<std::string, int> broken, caught;
  for (int i = 0; i < 600; ++i) {
    const Clip clip = make_clip(maker, rng);
    const ClipText text = clip_text_of(clip, nouns, 21, uint64_t(i));
    const int frames = int(clip.size());
    std::vector<std::pair<std::string, data::SceneText>> lies;
    if (frames > 1) {
      lies.emplace_back("frame answer of another frame", text.clip);
      std::string& answer = lies.back().second.questions[0].answer;
      answer = std::to_string(std::stoi(answer) % frames + 1);
      // The totals of all frames but the last: some class has fewer objects, or none.
      Clip fewer(clip.begin(), clip.end() - 1);
      lies.emplace_back("totals without the last frame", text.clip);
      lies.back().second.captions[0] = clip_text_of(fewer, nouns, 21, uint64_t(i)).clip.captions[0];
      // A frame's question asked of another frame: false unless both frames have it, same answer.
      lies.emplace_back("question of another frame", text.clip);
      std::string& question = lies.back().second.questions[4].question;
      const int k = std::stoi(question.substr(std::string("in frame ").size()));
      question = "in frame " + std::to_string(k % frames + 1) + question.substr(question.find(','));
    }
    lies.emplace_back("total answer + 1", text.clip);
    lies.back().second.questions[2].answer = std::to_string(std::stoi(text.clip.questions[2].answer) + 1);
    for (const auto& [what, lie] : lies) {
      Coverage ignored;
      broken[what]++;
      try {
        check_clip_text(clip, text.frames, lie, ignored);
      } catch (const Mismatch&) {
        caught[what]++;
      }
    }
  }
  for (const auto& [what, n] : broken) BOOST_TEST_MESSAGE(what << ": caught " << caught[what] << " of " << n);
  for (const char* what : {"frame answer of another frame", "totals without the last frame", "total answer + 1"}) {
    BOOST_TEST(broken[what] > 100, what);
    BOOST_TEST(caught[what] == broken[what], what << ": caught " << caught[what] << " of " << broken[what]);
  }
  BOOST_TEST(caught["question of another frame"] > broken["question of another frame"] / 2);
}

// The longest captions eight frames of four objects can make: every class, three or more of each,
// in the totals; the four longest nouns, all large, in every frame.
BOOST_AUTO_TEST_CASE(clip_captions_stay_within_150_bytes_in_the_worst_case) {
  const data::Nouns nouns(kFashionClasses);
  const int quadrants[4][4] = {{2, 2, 30, 30}, {2, 34, 30, 62}, {34, 2, 62, 30}, {34, 34, 62, 62}};  // large: 28 > 26
  auto frame_of = [&](const std::vector<int>& classes) {
    Truth t;
    for (size_t k = 0; k < classes.size(); ++k)
      t.items.push_back(Item{classes[k], quadrants[k][0], quadrants[k][1], quadrants[k][2], quadrants[k][3]});
    return t;
  };
  // Totals: counts 5, 3, 3, ... (32 objects, all ten classes).
  std::vector<int> objects;
  for (int c = 0; c < kClasses; ++c) objects.insert(objects.end(), size_t(c == 0 ? 5 : 3), c);
  Clip every_class, long_nouns;
  for (size_t f = 0; f < 8; ++f) {
    every_class.push_back(frame_of(std::vector<int>(objects.begin() + long(4 * f), objects.begin() + long(4 * f + 4))));
    long_nouns.push_back(frame_of({9, 2, 0, 1}));  // ankle boot, pullover, t-shirt, trouser
  }
  Coverage seen;
  int64_t failures = 0;
  size_t longest = 0;
  for (const Clip* clip : {&every_class, &long_nouns})
    for (uint64_t stream = 0; stream < 64; ++stream) {  // every frame's captions come up
      const ClipText text = clip_text_of(*clip, nouns, 1, stream);
      check_clip_reporting(*clip, text.frames, text.clip, seen, failures, "worst case, stream " + std::to_string(stream));
      for (const std::string& c : text.clip.captions) {
        longest = std::max(longest, c.size());
        BOOST_TEST(c.size() <= data::kClipCaptionBytes, "'" << c << "' is " << c.size() << " bytes");
      }
    }
  BOOST_TEST(failures == 0);
  BOOST_TEST_MESSAGE("longest clip caption: " << longest << " bytes; " << clip_text_of(every_class, nouns, 1, 0).clip.captions[0]);
  BOOST_TEST(seen["clip totals in digits"] > 0);  // in words, every class thrice is longer than 150
  BOOST_TEST(seen["clip totals in words"] > 0);
}

BOOST_AUTO_TEST_CASE(clip_text_is_a_function_of_its_arguments) {
  const data::Nouns nouns(kFashionClasses);
  SceneMaker maker(8);
  std::mt19937_64 rng(9);
  auto flat = [](const data::SceneText& text) {
    std::string out;
    for (const std::string& c : text.captions) out += "|" + c;
    for (const data::SceneQuestion& q : text.questions) out += "|" + q.question + "=" + q.answer + "/" + std::to_string(int(q.type));
    return out;
  };
  int varied = 0;
  for (int i = 0; i < 40; ++i) {
    Clip clip = make_clip(maker, rng);
    while (clip.size() < 3) clip = make_clip(maker, rng);
    const ClipText text = clip_text_of(clip, nouns, 4, 0);
    std::vector<std::vector<data::SceneObject>> objects;
    for (const Truth& t : clip) objects.push_back(scene_objects(t));
    std::set<std::string> variants;
    for (uint64_t stream = 0; stream < 8; ++stream) {
      const std::string once = flat(data::describe_clip(objects, text.frames, nouns, 4, stream));
      BOOST_TEST(once == flat(data::describe_clip(objects, text.frames, nouns, 4, stream)));
      variants.insert(once);
    }
    varied += variants.size() >= 6;
  }
  BOOST_TEST(varied >= 36, varied << " of 40 clips vary with the stream");
}

BOOST_AUTO_TEST_CASE(composed_clips_are_their_scenes_and_their_text_is_true) {
  data::testing::TempDir dir;
  write_blob_items(dir.file("items.h5"), 12);
  data::SceneOptions options;
  options.frames = 4;
  const auto items = data::Dataset::open(dir.file("items.h5"));
  const data::SceneComposer composer(items, options, 1);
  const data::SizeWords words = options.size_words();
  Coverage seen;
  int64_t failures = 0;
  std::vector<std::map<std::string, int64_t>> answers(6);
  const int clips = 400;
  for (int i = 0; i < clips; ++i) {
    const data::Clip clip = composer.make_clip(i);
    BOOST_TEST_REQUIRE(clip.frames.size() == 4u);
    Clip truth;
    std::vector<data::SceneText> frame_texts;
    for (int64_t f = 0; f < 4; ++f) {
      // Frame f of clip i is scene 4 i + f.
      const data::Scene scene = composer.make(4 * i + f), &frame = clip.frames[size_t(f)];
      BOOST_TEST((frame.image == scene.image), "clip " << i << " frame " << f);
      BOOST_TEST((frame.text.captions == scene.text.captions));
      BOOST_TEST(frame.objects.size() == scene.objects.size());
      truth.push_back(truth_of(frame, int(options.size), words));
      frame_texts.push_back(frame.text);
    }
    check_clip_reporting(truth, frame_texts, clip.text, seen, failures, "composed clip " + std::to_string(i));
    for (const data::SceneQuestion& q : clip.text.questions) answers[size_t(q.type)][q.answer]++;
  }
  BOOST_TEST(failures == 0);
  for (const auto& type : {data::QuestionType::frame, data::QuestionType::total}) {
    int64_t most = 0;
    std::string most_common;
    for (const auto& [answer, n] : answers[size_t(type)])
      if (n > most) most = n, most_common = answer;
    const double share = double(most) / double(2 * clips);
    BOOST_TEST_MESSAGE(data::question_type_names()[size_t(type)] << ": most common answer '" << most_common << "' " << share);
    BOOST_TEST(share < 0.5);
  }
}

BOOST_AUTO_TEST_SUITE_END()
