// safetensors files and the JSON reader behind their headers (train/safetensors.h, json_value.h).
// A refusal names the file; a file that reads is written again and reads back the same tensors.
#include "tests/fuzz/fuzz_input.h"
#include "train/json_value.h"
#include "train/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera;
  static const std::string copy = fuzzing::scratch_path("written-again.safetensors");
  const std::string& path = fuzzing::input_file("weights.safetensors", data, size);
  fuzzing::refused_or_read(path, [&] {
    const train::SafetensorsFile file = train::read_safetensors(path);
    train::write_safetensors(copy, file.tensors, file.metadata);
    const train::SafetensorsFile again = train::read_safetensors(copy);
    bool same = again.tensors.size() == file.tensors.size() && again.metadata == file.metadata;
    for (size_t i = 0; same && i < file.tensors.size(); ++i)
      same = again.tensors[i].first == file.tensors[i].first && fuzzing::same_tensor(again.tensors[i].second, file.tensors[i].second);
    fuzzing::assert_holds(same, "a safetensors file written again does not read back the same");
  });
  fuzzing::refused_or_read("fuzz.json", [&] {
    train::JsonValue::parse(std::string(reinterpret_cast<const char*>(data), size), "fuzz.json");
  });
  return 0;
}
