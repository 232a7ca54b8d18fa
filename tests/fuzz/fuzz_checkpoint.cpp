// Checkpoints (train/checkpoint.h): what eval, resume and model.from read first.
#include "tests/fuzz/fuzz_input.h"
#include "train/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera;
  static const std::string path = fuzzing::scratch_path("checkpoint.h5");
  fuzzing::write_input(path, data, size);
  fuzzing::expect_refusal_or_success([&] { train::load_checkpoint_meta(path); });
  fuzzing::expect_refusal_or_success([&] {
    const train::Checkpoint c = train::load_checkpoint(path);
    train::require_finite_weights(c, path);
  });
  return 0;
}
