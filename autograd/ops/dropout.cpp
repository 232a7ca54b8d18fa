// dropout and drop_path: a mask of 0 and 1 / (1 - p) multiplied in, so the gradient is mul's.
// Element i keeps when the i-th 32-bit Philox word, as a fraction of 2^32, is at least p.
#include <cmath>

#include "autograd/ops/dropout.h"
#include "autograd/error.h"
#include "autograd/ops.h"
#include "kernels/threads.h"

namespace tessera {
namespace {

// A [shape] tensor of 0 (probability p) and 1 / (1 - p); p = 1 drops everything.
Tensor keep_mask(const Shape& shape, double p, Generator& gen, DType dtype) {
  Tensor mask = Tensor::empty(shape, dtype);
  const int64_t n = mask.numel();
  const int64_t blocks = (n + 3) / 4;
  const uint64_t first = gen.advance(uint64_t(blocks));
  const uint64_t key = gen.seed();
  // Words below the threshold drop; p = 1 drops every word.
  const double threshold = std::ldexp(p, 32);
  const double keep_value = p < 1 ? 1.0 / (1.0 - p) : 0.0;
  visit_floating(dtype, "dropout", [&](auto tag) {
    using T = decltype(tag);
    T* m = mask.data<T>();
    kernels::parallel_for(blocks, 1 << 12, [&](int64_t begin, int64_t end) {
      uint32_t words[4];
      for (int64_t b = begin; b < end; ++b) {
        philox4x32(key, 0, first + uint64_t(b), words);
        for (int64_t k = 0; k < 4 && b * 4 + k < n; ++k)
          m[b * 4 + k] = double(words[k]) >= threshold ? T(keep_value) : T(0);
      }
    });
  });
  return mask;
}

void check(const char* op, const Tensor& x, double p) {
  if (!(p >= 0 && p <= 1)) fail("{}: probability must be in [0, 1], got {}", op, p);
  if (!is_floating(x.dtype())) fail("{}: input must be floating-point, got {}", op, dtype_name(x.dtype()));
}

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  check("dropout", x, p);
  if (!training || p == 0) return x;
  return mul(x, keep_mask(x.shape(), p, gen, x.dtype()));
}

Tensor drop_path(const Tensor& x, double p, bool training, Generator& gen) {
  check("drop_path", x, p);
  if (!training || p == 0) return x;
  if (x.dim() < 1) fail("drop_path: input needs a sample dimension, got a scalar");
  Shape shape(x.dim(), 1);
  shape[0] = x.size(0);
  return mul(x, keep_mask(shape, p, gen, x.dtype()));
}

}  // namespace tessera
