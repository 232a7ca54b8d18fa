#include "kernels/activation.h"

namespace tessera::kernels {
namespace {

constexpr Activation all_activations[] = {
    Activation::identity,
#define TESSERA_ACTIVATION_ENTRY(id) Activation::id,
    TESSERA_ACTIVATIONS(TESSERA_ACTIVATION_ENTRY)
#undef TESSERA_ACTIVATION_ENTRY
};

}  // namespace

const char* activation_name(Activation act) {
  return act == Activation::identity ? "identity" : unary_op_name(activation_op(act));
}

std::optional<Activation> activation_from_name(std::string_view name) {
  for (Activation act : all_activations)
    if (name == activation_name(act)) return act;
  return std::nullopt;
}

std::string activation_names() {
  std::string names;
  for (Activation act : all_activations) names += (names.empty() ? "" : ", ") + std::string(activation_name(act));
  return names;
}

}  // namespace tessera::kernels
