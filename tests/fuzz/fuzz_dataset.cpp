// Data set files (data/dataset.h): `data verify`, then open and read what a loader reads. A
// refusal names the file; a file `data verify` passes opens, and every read of it succeeds with
// values inside what the file declares.
#include <algorithm>
#include <vector>

#include "data/dataset.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera;
  using fuzzing::assert_holds;
  const std::string& path = fuzzing::input_file("dataset.h5", data, size);
  bool verified = false;
  fuzzing::refused_or_read(path, [&] { verified = data::verify_dataset(path).empty(); });
  const auto read_everything = [&] {
    const auto set = data::Dataset::open(path, 1 << 20);  // small limit: the chunked path as well
    const data::DatasetInfo& info = set->info();
    assert_holds(set->image_bytes() == info.height * info.width * info.channels && info.size >= 0, "inconsistent info");
    const int64_t n = std::min<int64_t>(set->size(), 8);
    std::vector<uint8_t> images(size_t(n * set->image_bytes()));
    set->read_range(0, n, images.data());
    for (int64_t i = 0; i < n; ++i) {
      if (info.has_labels && !info.class_names.empty())
        assert_holds(set->label(i) >= 0 && set->label(i) < int64_t(info.class_names.size()), "a label outside the class names");
      if (info.has_captions) assert_holds(int64_t(set->captions(i).size()) == std::max<int64_t>(info.captions_per_image, 1),
                                   "a caption count other than declared");
      if (info.has_objects) assert_holds(set->objects(i).count <= info.max_objects, "more objects than declared");
      if (info.questions_per_image > 0)
        assert_holds(set->questions(i).size() == set->answers(i).size(), "questions and answers differ in number");
      if (info.has_swapped_captions) set->swapped_caption(i);
    }
  };
  if (verified) {
    try {
      read_everything();
    } catch (const Error& e) {
      fuzzing::finding(std::string("data verify passed the file, but reading it failed: ") + e.what());
    }
  } else {
    fuzzing::refused_or_read(path, read_everything);
  }
  return 0;
}
