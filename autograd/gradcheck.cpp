#include "autograd/gradcheck.h"

#include <cmath>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops.h"
#include "autograd/random.h"

namespace tessera {
namespace {

// Storage offsets (in elements) of every logical element of t, in row-major order.
std::vector<int64_t> element_offsets(const Tensor& t) {
  std::vector<int64_t> offsets;
  offsets.reserve(size_t(t.numel()));
  std::vector<int64_t> index(t.dim(), 0);
  for (int64_t i = 0; i < t.numel(); ++i) {
    int64_t off = t.offset();
    for (int64_t d = 0; d < t.dim(); ++d) off += index[d] * t.strides()[d];
    offsets.push_back(off);
    for (int64_t d = t.dim() - 1; d >= 0; --d) {
      if (++index[d] < t.shape()[d]) break;
      index[d] = 0;
    }
  }
  return offsets;
}

double& element_f64(const Tensor& t, int64_t off) { return static_cast<double*>(t.storage()->data)[off]; }
float& element_f32(const Tensor& t, int64_t off) { return static_cast<float*>(t.storage()->data)[off]; }

double read(const Tensor& t, int64_t off) {
  return t.dtype() == DType::f64 ? element_f64(t, off) : double(element_f32(t, off));
}
void write(const Tensor& t, int64_t off, double v) {
  if (t.dtype() == DType::f64) element_f64(t, off) = v;
  else element_f32(t, off) = float(v);
}

double projected(const TensorFunction& f, const std::vector<Tensor>& inputs, const Tensor& v) {
  NoGradGuard no_grad;
  return sum(mul(f(inputs), v)).item();
}

}  // namespace

GradcheckResult gradcheck(const TensorFunction& f, const std::vector<Tensor>& inputs, const GradcheckOptions& o) {
  GradcheckResult result;
  for (const Tensor& x : inputs) x.impl().grad = nullptr;
  Tensor out = f(inputs);
  if (!out.requires_grad()) fail("gradcheck: the function's output does not require grad");
  Generator gen(o.seed);
  const Tensor v = randn(out.shape(), gen, out.dtype());
  sum(mul(out, v)).backward();

  // The message describes the worst failure, or the largest error when all pass.
  double worst = -1;
  bool worst_failed = false;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!x.requires_grad()) continue;
    const std::vector<double> analytic =
        x.grad().defined() ? x.grad().to_vector<double>() : std::vector<double>(size_t(x.numel()), 0.0);
    const std::vector<int64_t> offsets = element_offsets(x);
    for (size_t e = 0; e < offsets.size(); ++e) {
      const double saved = read(x, offsets[e]);
      write(x, offsets[e], saved + o.eps);
      const double plus = projected(f, inputs, v);
      write(x, offsets[e], saved - o.eps);
      const double minus = projected(f, inputs, v);
      write(x, offsets[e], saved);
      const double numeric = (plus - minus) / (2 * o.eps);
      const double err = std::abs(analytic[e] - numeric);
      const bool failed = !(err <= o.atol + o.rtol * std::abs(numeric));
      result.max_abs_error = std::max(result.max_abs_error, err);
      result.ok = result.ok && !failed;
      if ((failed && !worst_failed) || (failed == worst_failed && err > worst)) {
        worst = err;
        worst_failed = failed;
        result.message = fmt::format("input {} {} element {}: analytic {:.10g}, numeric {:.10g}, |diff| {:.3g}", i,
                                     x.shape_string(), e, analytic[e], numeric, err);
      }
    }
  }
  return result;
}

}  // namespace tessera
