#include "nn/layer_norm.h"

#include "autograd/error.h"
#include "autograd/ops/layer_norm.h"

namespace tessera::nn {

LayerNorm::LayerNorm(int64_t dim_, double eps_, bool affine) : dim(dim_), eps(eps_) {
  if (dim <= 0) fail("LayerNorm: dim must be positive, got {}", dim);
  if (!(eps > 0)) fail("LayerNorm: eps must be positive, got {}", eps);
  if (affine) {
    weight = register_parameter("weight", Tensor::ones({dim}));
    bias = register_parameter("bias", Tensor::zeros({dim}));
  }
}

Tensor LayerNorm::forward(const Tensor& x) {
  if (x.dim() < 1 || x.size(-1) != dim)
    fail("LayerNorm({}): input {} does not end in {} features", dim, x.shape_string(), dim);
  return layer_norm(x, weight, bias, eps);
}

}  // namespace tessera::nn
