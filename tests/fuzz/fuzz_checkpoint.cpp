// Checkpoints (train/checkpoint.h): what eval, resume and model.from read first. A refusal names
// the file; a checkpoint that loads is saved again and reloads to the same meta and tensors.
#include "tests/fuzz/fuzz_input.h"
#include "train/checkpoint.h"

namespace {

using namespace tessera;

bool same_group(const std::map<std::string, Tensor>& a, const std::map<std::string, Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [name, t] : a)
    if (!b.count(name) || !fuzzing::same_tensor(t, b.at(name))) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string copy = fuzzing::scratch_path("saved-again.h5");
  const std::string& path = fuzzing::input_file("checkpoint.h5", data, size);
  fuzzing::refused_or_read(path, [&] { train::load_checkpoint_meta(path); });
  fuzzing::refused_or_read(path, [&] {
    const train::Checkpoint c = train::load_checkpoint(path);
    train::require_finite_weights(c, path);
    train::save_checkpoint(copy, c);
    const train::Checkpoint again = train::load_checkpoint(copy);
    fuzzing::assert_holds(again.meta.step == c.meta.step && again.meta.recipe == c.meta.recipe &&
                       again.meta.input_shape == c.meta.input_shape && same_group(again.params, c.params) &&
                       same_group(again.ema, c.ema) && same_group(again.optim, c.optim),
                   "a checkpoint saved again does not load back the same");
  });
  return 0;
}
