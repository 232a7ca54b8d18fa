#include "nn/dropout.h"

#include "autograd/ops/dropout.h"
#include "autograd/error.h"

namespace tessera::nn {

Dropout::Dropout(double p_, Generator& gen) : p(p_), gen_(&gen) {
  if (!(p >= 0 && p <= 1)) fail("Dropout: probability must be in [0, 1], got {}", p);
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p, is_training(), *gen_); }

DropPath::DropPath(double p_, Generator& gen) : p(p_), gen_(&gen) {
  if (!(p >= 0 && p <= 1)) fail("DropPath: probability must be in [0, 1], got {}", p);
}

Tensor DropPath::forward(const Tensor& x) { return drop_path(x, p, is_training(), *gen_); }

}  // namespace tessera::nn
