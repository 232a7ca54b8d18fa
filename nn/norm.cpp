#include "nn/norm.h"

#include "autograd/error.h"
#include "autograd/ops/group_norm.h"

namespace tessera::nn {

GroupNorm::GroupNorm(int64_t groups, int64_t channels, double eps_, bool affine)
    : num_groups(groups), num_channels(channels), eps(eps_) {
  if (groups <= 0 || channels <= 0 || channels % groups)
    fail("GroupNorm: {} channels do not split into {} groups", channels, groups);
  if (affine) {
    weight = register_parameter("weight", Tensor::ones({channels}));
    bias = register_parameter("bias", Tensor::zeros({channels}));
  }
}

Tensor GroupNorm::forward(const Tensor& x) {
  if (x.dim() < 2 || x.size(1) != num_channels)
    fail("GroupNorm({}, {}): input must be [N, {}, ...], got {}", num_groups, num_channels, num_channels,
         x.shape_string());
  return group_norm(x, num_groups, weight, bias, eps);
}

}  // namespace tessera::nn
