#include "nn/fsq.h"

#include <cmath>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops.h"
#include "autograd/ops/quantize.h"

namespace tessera::nn {

namespace {
// Keeps tanh's range a hair inside the outermost levels so rounding never leaves them.
constexpr double kBoundEps = 1e-3;
}  // namespace

FiniteScalarQuantizer::FiniteScalarQuantizer(std::vector<int64_t> levels) : levels_(std::move(levels)) {
  if (levels_.empty()) fail("FSQ: levels must not be empty");
  for (int64_t l : levels_) {
    if (l < 2) fail("FSQ: every level count must be >= 2, got {}", fmt::join(levels_, ", "));
    if (codebook_size_ > (int64_t(1) << 40) / l) fail("FSQ: levels {} make too large a codebook", fmt::join(levels_, ", "));
    codebook_size_ *= l;
    const double half_range = double(l - 1) * (1 - kBoundEps) / 2;
    const double offset = l % 2 == 0 ? 0.5 : 0.0;
    half_range_.push_back(half_range);
    offset_.push_back(offset);
    shift_.push_back(std::atanh(offset / half_range));
    half_width_.push_back(double(l / 2));
  }
}

Tensor FiniteScalarQuantizer::channel_constant(const std::vector<double>& values, DType dtype) const {
  return Tensor::from_vector(values, {int64_t(values.size())}).to(dtype);
}

Tensor FiniteScalarQuantizer::bound(const Tensor& z) const {
  if (z.dim() < 1 || z.size(-1) != dim())
    fail("FSQ: input {} must end in {} channels (levels {})", z.shape_string(), dim(), fmt::join(levels_, ", "));
  const DType t = z.dtype();
  return tanh(z + channel_constant(shift_, t)) * channel_constant(half_range_, t) - channel_constant(offset_, t);
}

Tensor FiniteScalarQuantizer::forward(const Tensor& z) const {
  return round_ste(bound(z)) / channel_constant(half_width_, z.dtype());
}

Tensor FiniteScalarQuantizer::codes_to_indices(const Tensor& codes) const {
  if (codes.dim() < 1 || codes.size(-1) != dim())
    fail("FSQ: codes {} must end in {} channels", codes.shape_string(), dim());
  const std::vector<double> values = codes.to_vector<double>();
  const int64_t d = dim(), n = codes.numel() / d;
  Shape shape(codes.shape().begin(), codes.shape().end() - 1);
  Tensor out = Tensor::empty(shape, DType::i64);
  int64_t* o = out.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    int64_t index = 0, radix = 1;
    for (int64_t c = 0; c < d; ++c) {
      const double level = values[i * d + c] * half_width_[c];
      const int64_t digit = int64_t(std::llround(level)) + int64_t(half_width_[c]);
      if (std::abs(level - std::round(level)) > 1e-3 || digit < 0 || digit >= levels_[c])
        fail("FSQ: code value {} in channel {} of row {} is not one of the {} levels", values[i * d + c], c, i,
             levels_[c]);
      index += digit * radix;
      radix *= levels_[c];
    }
    o[i] = index;
  }
  return out;
}

Tensor FiniteScalarQuantizer::indices_to_codes(const Tensor& indices) const {
  if (indices.dtype() != DType::i64 && indices.dtype() != DType::i32)
    fail("FSQ: indices must be i64 or i32, got {} {}", dtype_name(indices.dtype()), indices.shape_string());
  const std::vector<int64_t> values = indices.to_vector<int64_t>();
  const int64_t d = dim(), n = int64_t(values.size());
  Shape shape = indices.shape();
  shape.push_back(d);
  Tensor out = Tensor::empty(shape);
  float* o = out.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    int64_t rest = values[i];
    if (rest < 0 || rest >= codebook_size_)
      fail("FSQ: index {} at position {} is outside the codebook [0, {})", rest, i, codebook_size_);
    for (int64_t c = 0; c < d; ++c) {
      const int64_t digit = rest % levels_[c];
      rest /= levels_[c];
      // in f32 arithmetic, as forward divides, so decoded codes equal the forward's bit for bit
      o[i * d + c] = float(digit - int64_t(half_width_[c])) / float(half_width_[c]);
    }
  }
  return out;
}

}  // namespace tessera::nn
