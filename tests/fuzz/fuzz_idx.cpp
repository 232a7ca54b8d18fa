// idx files (Fashion-MNIST's format, gzip'd or plain; data/import.h): the input as the images
// file beside valid labels, then as the labels file beside valid images. A refusal names the file
// at fault; an import that succeeds writes a data set of as many images as it says, which opens.
#include "data/dataset.h"
#include "data/import.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/support/image_files.h"

namespace {

// A valid idx file beside the input: `dims` and `values`, gzip'd.
std::string valid_idx(const std::string& name, const std::vector<uint32_t>& dims, const std::vector<uint8_t>& values) {
  const std::string path = tessera::fuzzing::scratch_path(name);
  tessera::testing::write_idx(path, dims, values, true);
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera;
  static const std::string images = valid_idx("images-idx", {2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});  // 2 images of 2x2
  static const std::string labels = valid_idx("labels-idx", {2}, {0, 1});
  static const std::string out = fuzzing::scratch_path("idx.h5");
  const std::string& input = fuzzing::input_file("input-idx", data, size);
  const std::vector<std::string> names{"a", "b", "c"};
  for (const auto& files : {std::pair{input, labels}, std::pair{images, input}})
    fuzzing::refused_or_read(input, [&] {
      const int64_t n = data::import_idx(files.first, files.second, out, names);
      fuzzing::assert_holds(data::Dataset::open(out)->size() == n, "the imported data set holds another count than said");
    });
  return 0;
}
