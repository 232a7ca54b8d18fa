#include "nn/conv.h"

#include <cmath>

#include "autograd/error.h"
#include "nn/init.h"

namespace tessera::nn {
namespace {

void check_channels(const char* layer, int64_t in, int64_t out, Size2 kernel, int64_t groups) {
  if (in <= 0 || out <= 0 || kernel[0] <= 0 || kernel[1] <= 0)
    fail("{}: channels ({} in, {} out) and kernel ({}, {}) must be positive", layer, in, out, kernel[0], kernel[1]);
  if (groups <= 0 || in % groups || out % groups)
    fail("{}: channels ({} in, {} out) must divide by groups {}", layer, in, out, groups);
}

// PyTorch's reset_parameters for conv layers: both bounds from the weight's fan_in.
Tensor init_bias(const Tensor& weight, int64_t size, Generator& gen) {
  const double bound = 1.0 / std::sqrt(double(init::fans(weight).first));
  Tensor b = Tensor::empty({size});
  init::uniform_(b, -bound, bound, gen);
  return b;
}

}  // namespace

Conv2d::Conv2d(int64_t in, int64_t out, Size2 kernel, const Conv2dOptions& o, bool with_bias, Generator& gen)
    : in_channels(in), out_channels(out), options(o) {
  check_channels("Conv2d", in, out, kernel, o.groups);
  Tensor w = Tensor::empty({out, in / o.groups, kernel[0], kernel[1]});
  init::kaiming_uniform_default_(w, gen);
  weight = register_parameter("weight", w);
  if (with_bias) bias = register_parameter("bias", init_bias(w, out, gen));
}

Tensor Conv2d::forward(const Tensor& x) {
  if (x.dim() != 4 || x.size(1) != in_channels)
    fail("Conv2d({}, {}): input must be [N, {}, H, W], got {}", in_channels, out_channels, in_channels,
         x.shape_string());
  return conv2d(x, weight, bias, options);
}

ConvTranspose2d::ConvTranspose2d(int64_t in, int64_t out, Size2 kernel, const ConvTranspose2dOptions& o,
                                 bool with_bias, Generator& gen)
    : in_channels(in), out_channels(out), options(o) {
  check_channels("ConvTranspose2d", in, out, kernel, o.groups);
  Tensor w = Tensor::empty({in, out / o.groups, kernel[0], kernel[1]});
  init::kaiming_uniform_default_(w, gen);
  weight = register_parameter("weight", w);
  if (with_bias) bias = register_parameter("bias", init_bias(w, out, gen));
}

Tensor ConvTranspose2d::forward(const Tensor& x) {
  if (x.dim() != 4 || x.size(1) != in_channels)
    fail("ConvTranspose2d({}, {}): input must be [N, {}, H, W], got {}", in_channels, out_channels, in_channels,
         x.shape_string());
  return conv_transpose2d(x, weight, bias, options);
}

}  // namespace tessera::nn
