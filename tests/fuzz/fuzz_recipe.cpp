// The recipe parser and schema (train/recipe.h): any text, as a recipe file would hold it. A
// refusal names the file; a recipe that parses is resolved to a text that parses again to itself
// (what a run stores in its checkpoint and reads back on resume).
#include "tests/fuzz/fuzz_input.h"
#include "train/recipe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using tessera::train::Recipe;
  const std::string text(reinterpret_cast<const char*>(data), size);
  tessera::fuzzing::refused_or_read("fuzz.yaml", [&] {
    const std::string resolved = Recipe::parse(text, "fuzz.yaml", {}).text();
    tessera::fuzzing::assert_holds(Recipe::parse(resolved, "fuzz.yaml (resolved)", {}).text() == resolved,
                            "the resolved recipe does not parse back to itself:\n" + resolved);
  });
  return 0;
}
