// safetensors files and the JSON reader behind their headers (train/safetensors.h, json_value.h).
#include "tests/fuzz/fuzz_input.h"
#include "train/json_value.h"
#include "train/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera;
  static const std::string path = fuzzing::scratch_path("weights.safetensors");
  fuzzing::write_input(path, data, size);
  fuzzing::expect_refusal_or_success([&] { train::read_safetensors(path); });
  fuzzing::expect_refusal_or_success(
      [&] { train::JsonValue::parse(std::string(reinterpret_cast<const char*>(data), size), "fuzz.json"); });
  return 0;
}
