#include "nn/activation.h"

#include "autograd/error.h"

namespace tessera::nn {

Activation activation_from_name(const std::string& name) {
  if (const auto act = kernels::activation_from_name(name)) return *act;
  fail("unknown activation '{}' (known: {})", name, kernels::activation_names());
}

std::vector<std::string> activation_choices() {
  std::vector<std::string> names{kernels::activation_name(Activation::identity)};
#define TESSERA_ACTIVATION_NAME(id) names.push_back(kernels::activation_name(Activation::id));
  TESSERA_ACTIVATIONS(TESSERA_ACTIVATION_NAME)
#undef TESSERA_ACTIVATION_NAME
  return names;
}

}  // namespace tessera::nn
