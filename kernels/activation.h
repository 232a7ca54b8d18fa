#pragma once
// The activation vocabulary, one for every layer of the house: the fused bias + activation
// kernel (bias_act.h), autograd's activate() and fused_linear(), and nn's layers and recipes all
// name activations with this enum and this name table. Every activation but identity is the
// elementwise op of the same id in elementwise_ops.def, whose scalar, vector and derivative
// forms it uses; adding one is adding its id to TESSERA_ACTIVATIONS.
#include <optional>
#include <string>
#include <string_view>

#include "kernels/elementwise.h"

namespace tessera::kernels {

// X(id) for every activation but identity; each id is also a UnaryOp.
#define TESSERA_ACTIVATIONS(X) X(relu) X(gelu_tanh) X(gelu_erf) X(silu) X(tanh)

enum class Activation {
  identity,
#define TESSERA_ACTIVATION_ENUM(id) id,
  TESSERA_ACTIVATIONS(TESSERA_ACTIVATION_ENUM)
#undef TESSERA_ACTIVATION_ENUM
};

// The elementwise op an activation applies; identity applies none (and maps to UnaryOp::scale,
// which callers never run: they test for identity first).
constexpr UnaryOp activation_op(Activation act) {
  switch (act) {
    case Activation::identity: return UnaryOp::scale;
#define TESSERA_ACTIVATION_OP(id) \
  case Activation::id: return UnaryOp::id;
    TESSERA_ACTIVATIONS(TESSERA_ACTIVATION_OP)
#undef TESSERA_ACTIVATION_OP
  }
  return UnaryOp::scale;
}

// The name recipes and errors use: "identity", else the op's name ("relu", "gelu" for the exact
// erf form, "gelu_tanh", "silu", "tanh").
const char* activation_name(Activation act);

// The activation called `name`, or nullopt.
std::optional<Activation> activation_from_name(std::string_view name);

// Every name, comma-separated, for error messages.
std::string activation_names();

}  // namespace tessera::kernels
