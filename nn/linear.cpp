#include "nn/linear.h"

#include <cmath>

#include "autograd/error.h"
#include "autograd/ops.h"
#include "nn/init.h"

namespace tessera::nn {

Linear::Linear(int64_t in, int64_t out, bool with_bias, Generator& gen) : in_features(in), out_features(out) {
  if (in <= 0 || out <= 0) fail("Linear: features must be positive (in {}, out {})", in, out);
  Tensor w = Tensor::empty({out, in});
  init::kaiming_uniform_default_(w, gen);
  weight = register_parameter("weight", w);
  if (with_bias) {
    Tensor b = Tensor::empty({out});
    init::uniform_(b, -1.0 / std::sqrt(double(in)), 1.0 / std::sqrt(double(in)), gen);
    bias = register_parameter("bias", b);
  }
}

Tensor Linear::forward(const Tensor& x) {
  if (x.dim() < 1 || x.size(-1) != in_features)
    fail("Linear({}, {}): input {} does not end in {} features", in_features, out_features, x.shape_string(),
         in_features);
  Tensor flat = x.dim() == 2 ? x : x.reshape({-1, in_features});
  Tensor y = matmul(flat, weight.t());
  if (bias.defined()) y = y + bias;
  if (x.dim() == 2) return y;
  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  return y.reshape(out_shape);
}

}  // namespace tessera::nn
