// PNG and JPEG decoding (data/image_io.h), as the folder importer reads images, gray and RGB. A
// refusal names the file; an image that decodes has the pixels its size says, in the channels asked.
#include "data/image_io.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera;
  using fuzzing::assert_holds;
  const std::string& path = fuzzing::input_file("image", data, size);
  for (int64_t channels : {1, 3})
    fuzzing::refused_or_read(path, [&] {
      const data::Image image = data::read_image(path, channels);
      assert_holds(image.channels == channels && image.height > 0 && image.width > 0, "an image of another shape than asked");
      assert_holds(int64_t(image.pixels.size()) == image.height * image.width * channels, "pixels other than its size");
      const data::Image square = data::resize_center_crop(image, 8);
      assert_holds(square.height == 8 && square.width == 8 && int64_t(square.pixels.size()) == 64 * channels,
            "the 8x8 crop has another size");
    });
  return 0;
}
