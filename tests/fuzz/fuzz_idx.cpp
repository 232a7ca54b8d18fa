// idx files (Fashion-MNIST's format, gzip'd or plain; data/import.h): the input as the images
// file beside valid labels, then as the labels file beside valid images.
#include <zlib.h>

#include "data/import.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

void write_idx(const std::string& path, const std::vector<uint8_t>& header_and_values) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, header_and_values.data(), unsigned(header_and_values.size()));
  gzclose(f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera;
  static const std::string input = fuzzing::scratch_path("input-idx"), images = fuzzing::scratch_path("images-idx"),
                           labels = fuzzing::scratch_path("labels-idx"), out = fuzzing::scratch_path("idx.h5");
  static const bool made = [] {
    write_idx(images, {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8});  // 2 images of 2x2
    write_idx(labels, {0, 0, 8, 1, 0, 0, 0, 2, 0, 1});
    return true;
  }();
  (void)made;
  fuzzing::write_input(input, data, size);
  const std::vector<std::string> names{"a", "b", "c"};
  fuzzing::expect_refusal_or_success([&] { data::import_idx(input, labels, out, names); });
  fuzzing::expect_refusal_or_success([&] { data::import_idx(images, input, out, names); });
  return 0;
}
