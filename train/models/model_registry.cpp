#include "train/models/model_registry.h"

namespace tessera::train {

// A function-local static: registrations run during static initialisation, in any order.
Registry<ModelFactory>& models() {
  static Registry<ModelFactory> registry("model");
  return registry;
}

}  // namespace tessera::train
