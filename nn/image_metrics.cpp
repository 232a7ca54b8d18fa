#include "nn/image_metrics.h"

#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "autograd/error.h"

namespace tessera::nn {

namespace {
constexpr int64_t kWindow = 11;
constexpr double kSigma = 1.5;
constexpr double kC1 = 0.01 * 0.01, kC2 = 0.03 * 0.03;

std::array<double, kWindow> gaussian_window() {
  std::array<double, kWindow> g{};
  double total = 0;
  for (int64_t i = 0; i < kWindow; ++i) {
    const double x = double(i - kWindow / 2);
    g[i] = std::exp(-x * x / (2 * kSigma * kSigma));
    total += g[i];
  }
  for (double& v : g) v /= total;
  return g;
}

// "valid" separable filtering of an h x w plane by the window: (h - 10) x (w - 10).
std::vector<double> filter(const std::vector<double>& x, int64_t h, int64_t w, const std::array<double, kWindow>& g) {
  const int64_t oh = h - kWindow + 1, ow = w - kWindow + 1;
  std::vector<double> rows(h * ow), out(oh * ow);
  for (int64_t i = 0; i < h; ++i)
    for (int64_t j = 0; j < ow; ++j) {
      double s = 0;
      for (int64_t t = 0; t < kWindow; ++t) s += g[t] * x[i * w + j + t];
      rows[i * ow + j] = s;
    }
  for (int64_t i = 0; i < oh; ++i)
    for (int64_t j = 0; j < ow; ++j) {
      double s = 0;
      for (int64_t t = 0; t < kWindow; ++t) s += g[t] * rows[(i + t) * ow + j];
      out[i * ow + j] = s;
    }
  return out;
}

void check_pair(const Tensor& a, const Tensor& b, const char* what) {
  if (a.dim() != 4 || a.shape() != b.shape() || a.dtype() != DType::f32 || b.dtype() != DType::f32)
    fail("{}: expects two f32 image batches [N, C, H, W] of one shape, got {} {} and {} {}", what, a.shape_string(),
         dtype_name(a.dtype()), b.shape_string(), dtype_name(b.dtype()));
}
}  // namespace

double psnr_from_mse(double mse) {
  if (mse <= 0) return std::numeric_limits<double>::infinity();
  return 10 * std::log10(1 / mse);
}

double ssim_plane(const float* a, const float* b, int64_t h, int64_t w) {
  if (h < kWindow || w < kWindow) fail("ssim: a {}x{} image is smaller than the {}x{} window", h, w, kWindow, kWindow);
  static const std::array<double, kWindow> g = gaussian_window();
  const int64_t n = h * w;
  std::vector<double> x(n), y(n), xx(n), yy(n), xy(n);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = a[i], y[i] = b[i];
    xx[i] = x[i] * x[i], yy[i] = y[i] * y[i], xy[i] = x[i] * y[i];
  }
  const auto mx = filter(x, h, w, g), my = filter(y, h, w, g);
  const auto sxx = filter(xx, h, w, g), syy = filter(yy, h, w, g), sxy = filter(xy, h, w, g);
  double total = 0;
  for (size_t i = 0; i < mx.size(); ++i) {
    const double vx = sxx[i] - mx[i] * mx[i], vy = syy[i] - my[i] * my[i], cov = sxy[i] - mx[i] * my[i];
    total += (2 * mx[i] * my[i] + kC1) * (2 * cov + kC2) / ((mx[i] * mx[i] + my[i] * my[i] + kC1) * (vx + vy + kC2));
  }
  return total / double(mx.size());
}

double ssim(const Tensor& a, const Tensor& b) {
  check_pair(a, b, "ssim");
  const Tensor ac = a.contiguous(), bc = b.contiguous();
  const int64_t n = a.size(0), c = a.size(1), h = a.size(2), w = a.size(3);
  if (n == 0) return 0;
  double total = 0;
  for (int64_t i = 0; i < n * c; ++i) total += ssim_plane(ac.data<float>() + i * h * w, bc.data<float>() + i * h * w, h, w);
  return total / double(n * c);
}

double bits_per_image(int64_t tokens, int64_t codebook_size) {
  if (tokens < 0 || codebook_size < 1) fail("bits_per_image: tokens {} and codebook size {} are invalid", tokens, codebook_size);
  return double(tokens) * std::log2(double(codebook_size));
}

void ReconstructionMetrics::add(const Tensor& original, const Tensor& reconstruction) {
  check_pair(original, reconstruction, "ReconstructionMetrics");
  const Tensor a = original.detach().contiguous(), b = reconstruction.detach().contiguous();
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  const int64_t count = a.numel();
  double se = 0;
  for (int64_t i = 0; i < count; ++i) {
    const double diff = double(pa[i]) - double(pb[i]);
    se += diff * diff;
  }
  squared_error_ += se;
  values_ += count;
  images_ += a.size(0);
  if (a.size(2) >= kWindow && a.size(3) >= kWindow && a.size(0) > 0) {
    ssim_sum_ += nn::ssim(a, b) * double(a.size(0));
    ssim_images_ += a.size(0);
  }
}

double ReconstructionMetrics::mse() const { return values_ == 0 ? 0 : squared_error_ / double(values_); }

double ReconstructionMetrics::ssim() const { return ssim_images_ == 0 ? 0 : ssim_sum_ / double(ssim_images_); }

}  // namespace tessera::nn
