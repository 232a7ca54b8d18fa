// The VAE posterior (reparameterisation and KL gradients) and the reconstruction metrics.
#include <boost/test/unit_test.hpp>

#include <cmath>

#include "tests/support/gradcheck_helpers.h"
#include "autograd/error.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "autograd/random.h"
#include "nn/gaussian.h"
#include "nn/image_metrics.h"

using namespace tessera;
using test::leaf;

namespace {
// SSIM straight from the definition: every window position, weights recomputed in 2-D.
double reference_ssim(const std::vector<float>& a, const std::vector<float>& b, int h, int w) {
  double g[11][11], total_w = 0;
  for (int i = 0; i < 11; ++i)
    for (int j = 0; j < 11; ++j) total_w += g[i][j] = std::exp(-((i - 5) * (i - 5) + (j - 5) * (j - 5)) / (2 * 1.5 * 1.5));
  double sum = 0;
  int count = 0;
  for (int y = 0; y + 11 <= h; ++y)
    for (int x = 0; x + 11 <= w; ++x) {
      double ma = 0, mb = 0;
      for (int i = 0; i < 11; ++i)
        for (int j = 0; j < 11; ++j) ma += g[i][j] / total_w * a[(y + i) * w + x + j], mb += g[i][j] / total_w * b[(y + i) * w + x + j];
      double va = 0, vb = 0, cov = 0;
      for (int i = 0; i < 11; ++i)
        for (int j = 0; j < 11; ++j) {
          const double da = a[(y + i) * w + x + j] - ma, db = b[(y + i) * w + x + j] - mb, wt = g[i][j] / total_w;
          va += wt * da * da, vb += wt * db * db, cov += wt * da * db;
        }
      const double c1 = 1e-4, c2 = 9e-4;
      sum += (2 * ma * mb + c1) * (2 * cov + c2) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
      ++count;
    }
  return sum / count;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(gaussian_posterior)

BOOST_AUTO_TEST_CASE(reparameterisation_and_kl_gradcheck) {
  const Tensor mean = leaf({3, 2, 2, 2}, 1), logvar = leaf({3, 2, 2, 2}, 2), noise = leaf({3, 2, 2, 2}, 3).detach();
  GradcheckResult r = gradcheck([&](auto& x) { return nn::reparameterize(x[0], x[1], noise); }, {mean, logvar});
  BOOST_TEST(r.ok, r.message);
  for (auto reduction : {nn::KlReduction::sum, nn::KlReduction::mean}) {
    r = gradcheck([&](auto& x) { return nn::gaussian_kl(x[0], x[1], reduction); }, {mean, logvar});
    BOOST_TEST(r.ok, r.message);
  }
}

BOOST_AUTO_TEST_CASE(kl_values) {
  BOOST_TEST(nn::gaussian_kl(Tensor::zeros({4, 3}), Tensor::zeros({4, 3})).item() == 0.0);
  // one element, mean 1, var e: 0.5 (1 + e - 1 - 1) per element; batch of 2 with 3 elements each
  const double expected = 0.5 * (1 + std::exp(1.0) - 2) * 3;
  BOOST_TEST(std::abs(nn::gaussian_kl(Tensor::ones({2, 3}), Tensor::ones({2, 3})).item() - expected) < 1e-5);
  BOOST_TEST(std::abs(nn::gaussian_kl(Tensor::ones({2, 3}), Tensor::ones({2, 3}), nn::KlReduction::mean).item() -
                      expected / 3) < 1e-5);
}

BOOST_AUTO_TEST_CASE(moments_split_and_sampling_is_seeded) {
  Generator gen(4);
  const Tensor moments = normal({2, 6, 3, 3}, 0, 1, gen);
  const auto g = nn::DiagonalGaussian::from_moments(moments);
  BOOST_TEST(g.mean.shape() == (Shape{2, 3, 3, 3}));
  BOOST_TEST(allclose(g.mean, moments.slice(1, 0, 3)));
  Generator a(9), b(9);
  BOOST_TEST(allclose(g.sample(a), g.sample(b), 0, 0));
  // sample spread follows exp(logvar / 2)
  const auto wide = nn::DiagonalGaussian{Tensor::zeros({20000}), Tensor::full({20000}, std::log(4.0))};
  Generator c(10);
  const double sd = std::sqrt(var(wide.sample(c)).item());
  BOOST_TEST(std::abs(sd - 2.0) < 0.05);
  BOOST_CHECK_THROW(nn::DiagonalGaussian::from_moments(Tensor::zeros({2, 5, 3, 3})), Error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(image_metrics)

BOOST_AUTO_TEST_CASE(psnr_over_the_whole_set) {
  nn::ReconstructionMetrics m;
  m.add(Tensor::zeros({1, 1, 4, 4}), Tensor::full({1, 1, 4, 4}, 0.1));   // MSE 0.01
  m.add(Tensor::zeros({1, 1, 4, 4}), Tensor::full({1, 1, 4, 4}, 0.0));   // MSE 0
  BOOST_TEST(std::abs(m.mse() - 0.005) < 1e-9);
  BOOST_TEST(std::abs(m.psnr() - 10 * std::log10(200.0)) < 1e-6);  // not the mean of per-batch PSNRs
  BOOST_TEST(m.images() == 2);
  BOOST_TEST(std::isinf(nn::psnr_from_mse(0)));
  BOOST_CHECK_THROW(m.add(Tensor::zeros({1, 1, 4, 4}), Tensor::zeros({1, 1, 4, 5})), Error);
}

BOOST_AUTO_TEST_CASE(ssim_matches_the_definition) {
  Generator gen(5);
  const Tensor a = rand({2, 3, 16, 13}, gen);
  const Tensor b = clamp(a + normal({2, 3, 16, 13}, 0, 0.1, gen), 0.0, 1.0);
  BOOST_TEST(std::abs(nn::ssim(a, a) - 1) < 1e-9);
  double expected = 0;
  const auto av = a.to_vector<float>(), bv = b.to_vector<float>();
  for (int p = 0; p < 6; ++p)
    expected += reference_ssim({av.begin() + p * 208, av.begin() + (p + 1) * 208}, {bv.begin() + p * 208, bv.begin() + (p + 1) * 208}, 16, 13);
  expected /= 6;
  BOOST_TEST(std::abs(nn::ssim(a, b) - expected) < 1e-9);
  BOOST_TEST(nn::ssim(a, b) < 0.99);
  BOOST_TEST(std::abs(nn::ssim(a, b) - nn::ssim(b, a)) < 1e-12);
  BOOST_CHECK_THROW(nn::ssim(Tensor::zeros({1, 1, 8, 8}), Tensor::zeros({1, 1, 8, 8})), Error);
}

BOOST_AUTO_TEST_CASE(bits) {
  BOOST_TEST(nn::bits_per_image(49, 512) == 49 * 9.0);
  BOOST_TEST(std::abs(nn::bits_per_image(49, 1000) - 49 * std::log2(1000.0)) < 1e-9);
}

BOOST_AUTO_TEST_SUITE_END()
