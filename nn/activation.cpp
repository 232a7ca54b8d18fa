#include "nn/activation.h"

#include "autograd/error.h"

namespace tessera::nn {

Activation activation_from_name(const std::string& name) {
  if (const auto act = kernels::activation_from_name(name)) return *act;
  fail("unknown activation '{}' (known: {})", name, kernels::activation_names());
}

}  // namespace tessera::nn
