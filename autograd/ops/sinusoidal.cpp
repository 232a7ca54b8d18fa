#include "autograd/ops/sinusoidal.h"

#include <fmt/format.h>

#include <cmath>
#include <vector>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops/strided.h"

namespace tessera {

using detail::contiguous_data;

namespace {
std::vector<double> frequencies(int64_t half, double max_period) {
  std::vector<double> f(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) f[size_t(i)] = std::exp(-std::log(max_period) * double(i) / double(half));
  return f;
}
}  // namespace

Tensor sinusoidal_features(const Tensor& t, int64_t dim, double max_period) {
  const char* op = "sinusoidal_features";
  if (!t.defined() || t.dim() != 1 || !is_floating(t.dtype()))
    fail("{}: expects real values [N], got {}", op, t.defined() ? fmt::format("{} {}", dtype_name(t.dtype()), t.shape_string()) : std::string("undefined"));
  if (dim < 2 || dim % 2 != 0) fail("{}: dim must be even and >= 2, got {}", op, dim);
  if (!(max_period > 1)) fail("{}: max_period must be > 1, got {}", op, max_period);
  const int64_t n = t.size(0), half = dim / 2;
  const std::vector<double> f = frequencies(half, max_period);
  const Tensor x = contiguous_data(t);
  Tensor y = Tensor::empty({n, dim}, t.dtype());
  visit_floating(t.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* in = x.data<T>();
    T* out = y.data<T>();
    for (int64_t r = 0; r < n; ++r)
      for (int64_t i = 0; i < half; ++i) {
        const double a = double(in[r]) * f[size_t(i)];
        out[r * dim + i] = T(std::cos(a));
        out[r * dim + half + i] = T(std::sin(a));
      }
  });
  return record(y, op, {t}, [x, f, n, dim, half](const Tensor& grad) {
    const Tensor g = contiguous_data(grad);
    Tensor dt = Tensor::empty({n}, x.dtype());
    visit_floating(x.dtype(), "sinusoidal_features backward", [&](auto tag) {
      using T = decltype(tag);
      const T* in = x.data<T>();
      const T* go = g.data<T>();
      T* out = dt.data<T>();
      for (int64_t r = 0; r < n; ++r) {
        double s = 0;
        for (int64_t i = 0; i < half; ++i) {
          const double a = double(in[r]) * f[size_t(i)];
          s += f[size_t(i)] * (-std::sin(a) * double(go[r * dim + i]) + std::cos(a) * double(go[r * dim + half + i]));
        }
        out[r] = T(s);
      }
    });
    return std::vector<Tensor>{dt};
  });
}

}  // namespace tessera
