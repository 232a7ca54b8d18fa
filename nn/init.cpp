#include "nn/init.h"

#include <algorithm>
#include <cmath>

#include "autograd/error.h"

namespace tessera::nn::init {

void zeros_(Tensor& t) { t.fill_(0); }

void uniform_(Tensor& t, double low, double high, Generator& gen) { t.copy_(uniform(t.shape(), low, high, gen, t.dtype())); }

void normal_(Tensor& t, double mean, double std, Generator& gen) { t.copy_(normal(t.shape(), mean, std, gen, t.dtype())); }

namespace {
double normal_cdf(double x) { return 0.5 * (1 + std::erf(x / std::sqrt(2.0))); }

// Inverse of the standard normal CDF (Acklam's rational approximation refined by one Newton step).
double normal_icdf(double p) {
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                             1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  double x;
  if (p < 0.02425) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p > 1 - 0.02425) {
    const double q = std::sqrt(-2 * std::log(1 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  }
  const double e = normal_cdf(x) - p;
  return x - e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
}
}  // namespace

void trunc_normal_(Tensor& t, double std, Generator& gen, double mean, double a, double b) {
  const double lo = normal_cdf((a - mean) / std), hi = normal_cdf((b - mean) / std);
  const Tensor u = uniform(t.shape(), lo, hi, gen, DType::f64);
  Tensor out = Tensor::empty(t.shape(), DType::f64);
  const double* pu = u.data<double>();
  double* po = out.data<double>();
  for (int64_t i = 0; i < u.numel(); ++i)
    po[i] = std::clamp(mean + std * normal_icdf(std::clamp(pu[i], 1e-12, 1 - 1e-12)), a, b);
  t.copy_(out);
}

std::pair<int64_t, int64_t> fans(const Tensor& t) {
  if (t.dim() < 2) fail("init: fan of a tensor of shape {} needs at least 2 dims", t.shape_string());
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.shape()[d];
  return {t.shape()[1] * receptive, t.shape()[0] * receptive};
}

void kaiming_uniform_default_(Tensor& t, Generator& gen) {
  const double bound = 1.0 / std::sqrt(double(fans(t).first));
  uniform_(t, -bound, bound, gen);
}

}  // namespace tessera::nn::init
