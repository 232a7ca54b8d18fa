// Data set files (data/dataset.h): `data verify`, then open and read everything a loader reads.
#include <algorithm>
#include <vector>

#include "data/dataset.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera;
  static const std::string path = fuzzing::scratch_path("dataset.h5");
  fuzzing::write_input(path, data, size);
  fuzzing::expect_refusal_or_success([&] { data::verify_dataset(path); });
  fuzzing::expect_refusal_or_success([&] {
    const auto set = data::Dataset::open(path, 1 << 20);  // small limit: the chunked path as well
    const int64_t n = std::min<int64_t>(set->size(), 8);
    std::vector<uint8_t> images(size_t(n * set->image_bytes()));
    set->read_range(0, n, images.data());
    const data::DatasetInfo& info = set->info();
    for (int64_t i = 0; i < n; ++i) {
      if (info.has_labels) set->label(i);
      if (info.has_captions) set->captions(i);
      if (info.has_objects) set->objects(i);
      if (info.questions_per_image > 0) set->questions(i), set->answers(i), set->question_types(i);
      if (info.has_swapped_captions) set->swapped_caption(i);
    }
  });
  return 0;
}
