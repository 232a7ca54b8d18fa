// PNG and JPEG decoding (data/image_io.h), as the folder importer reads images, gray and RGB.
#include "data/image_io.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera;
  static const std::string path = fuzzing::scratch_path("image");
  fuzzing::write_input(path, data, size);
  for (int64_t channels : {1, 3})
    fuzzing::expect_refusal_or_success([&] {
      const data::Image image = data::read_image(path, channels);
      if (int64_t(image.pixels.size()) != image.height * image.width * image.channels) std::abort();
      data::resize_center_crop(image, 8);
    });
  return 0;
}
