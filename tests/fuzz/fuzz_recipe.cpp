// The recipe parser and schema (train/recipe.h): any text, as a recipe file would hold it.
#include "tests/fuzz/fuzz_input.h"
#include "train/recipe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  tessera::fuzzing::expect_refusal_or_success([&] {
    const tessera::train::Recipe recipe = tessera::train::Recipe::parse(text, "fuzz.yaml", {});
    // What a run stores in its checkpoint must parse again to the same recipe.
    const std::string resolved = recipe.text();
    if (tessera::train::Recipe::parse(resolved, "resolved.yaml", {}).text() != resolved) std::abort();
  });
  return 0;
}
