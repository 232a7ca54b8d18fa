// Feature statistics of generative models: the Jacobi eigensolver on matrices with known
// spectra, the Gaussian fit against a hand computation, the Fréchet distance against closed forms
// (diagonal covariances, a 2x2 pair that does not commute, a covariance and its scaled copy, a set
// and its translate) and its invariance under one rotation of both Gaussians, kNN precision and
// recall on hand-made sets and against a brute-force reading of the definition, and the errors.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "autograd/error.h"
#include "autograd/random.h"
#include "nn/feature_statistics.h"

using namespace tessera;
using namespace tessera::nn;

namespace {

using Matrix = std::vector<double>;  // row-major, square unless said otherwise

Tensor rows(const std::vector<double>& values, int64_t n, int64_t d) { return Tensor::from_vector(values, {n, d}); }

std::vector<double> normal_values(int64_t count, uint64_t seed) {
  Generator gen(seed);
  return randn({count}, gen, DType::f64).to_vector<double>();
}

Matrix multiply(const Matrix& a, const Matrix& b, int64_t n) {
  Matrix c(size_t(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < n; ++k)
      for (int64_t j = 0; j < n; ++j) c[i * n + j] += a[i * n + k] * b[k * n + j];
  return c;
}

Matrix transpose(const Matrix& a, int64_t n) {
  Matrix t(a.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) t[j * n + i] = a[i * n + j];
  return t;
}

Matrix diagonal(const std::vector<double>& d) {
  const int64_t n = int64_t(d.size());
  Matrix m(size_t(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) m[i * n + i] = d[i];
  return m;
}

// A random orthogonal matrix: Gram-Schmidt on the rows of a Gaussian matrix.
Matrix orthogonal(int64_t n, uint64_t seed) {
  Matrix q = normal_values(n * n, seed);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < i; ++j) {
      double dot = 0;
      for (int64_t t = 0; t < n; ++t) dot += q[i * n + t] * q[j * n + t];
      for (int64_t t = 0; t < n; ++t) q[i * n + t] -= dot * q[j * n + t];
    }
    double norm = 0;
    for (int64_t t = 0; t < n; ++t) norm += q[i * n + t] * q[i * n + t];
    for (int64_t t = 0; t < n; ++t) q[i * n + t] /= std::sqrt(norm);
  }
  return q;
}

Matrix rotated(const Matrix& q, const Matrix& s, int64_t n) { return multiply(multiply(q, s, n), transpose(q, n), n); }

std::vector<double> rotated(const Matrix& q, const std::vector<double>& v) {
  const int64_t n = int64_t(v.size());
  std::vector<double> r(v.size(), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) r[i] += q[i * n + j] * v[j];
  return r;
}

// A random covariance with eigenvalues spread over two decades: A A^T / n + 0.01 I.
Matrix random_covariance(int64_t n, uint64_t seed) {
  const Matrix a = normal_values(n * n, seed);
  Matrix s = multiply(a, transpose(a, n), n);
  for (int64_t i = 0; i < n * n; ++i) s[i] /= double(n);
  for (int64_t i = 0; i < n; ++i) s[i * n + i] += 0.01;
  return s;
}

GaussianFit fit(const std::vector<double>& mean, const Matrix& covariance) {
  return {.dim = int64_t(mean.size()), .count = 0, .mean = mean, .covariance = covariance};
}

double trace(const Matrix& a, int64_t n) {
  double t = 0;
  for (int64_t i = 0; i < n; ++i) t += a[i * n + i];
  return t;
}

double relative_error(double got, double expected) { return std::abs(got - expected) / std::abs(expected); }

// The definition read literally: Euclidean distances with sqrt, the radius the k-th smallest of the
// distances to every other row.
PrecisionRecall precision_recall_by_definition(const std::vector<double>& real, const std::vector<double>& generated,
                                               int64_t d, int64_t k) {
  auto distance = [d](const double* a, const double* b) {
    double s = 0;
    for (int64_t t = 0; t < d; ++t) s += (a[t] - b[t]) * (a[t] - b[t]);
    return std::sqrt(s);
  };
  auto radii = [&](const std::vector<double>& x) {
    const int64_t n = int64_t(x.size()) / d;
    std::vector<double> r;
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> others;
      for (int64_t j = 0; j < n; ++j)
        if (j != i) others.push_back(distance(&x[i * d], &x[j * d]));
      std::nth_element(others.begin(), others.begin() + (k - 1), others.end());
      r.push_back(others[k - 1]);
    }
    return r;
  };
  auto covered = [&](const std::vector<double>& points, const std::vector<double>& centres) {
    const std::vector<double> r = radii(centres);
    const int64_t n = int64_t(points.size()) / d, m = int64_t(centres.size()) / d;
    int64_t inside = 0;
    for (int64_t i = 0; i < n; ++i) {
      bool in = false;
      for (int64_t j = 0; j < m && !in; ++j) in = distance(&points[i * d], &centres[j * d]) <= r[j];
      inside += in;
    }
    return double(inside) / double(n);
  };
  return {.precision = covered(generated, real), .recall = covered(real, generated)};
}

// `count` points around each of the given centres (d columns each), spread `spread`.
std::vector<double> clusters(const std::vector<std::vector<double>>& centres, int64_t count, double spread, uint64_t seed) {
  const int64_t d = int64_t(centres[0].size());
  const std::vector<double> noise = normal_values(int64_t(centres.size()) * count * d, seed);
  std::vector<double> x;
  for (size_t c = 0; c < centres.size(); ++c)
    for (int64_t i = 0; i < count; ++i)
      for (int64_t t = 0; t < d; ++t) x.push_back(centres[c][t] + spread * noise[x.size()]);
  return x;
}

void check_error_names(const std::function<void()>& fn, const std::string& text) {
  try {
    fn();
    BOOST_ERROR("expected an error naming " << text);
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find(text) != std::string::npos, e.what());
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(feature_statistics)

BOOST_AUTO_TEST_CASE(jacobi_finds_known_spectra) {
  // Tridiagonal [1 2 1]-ish: eigenvalues 2 - sqrt 2, 2, 2 + sqrt 2.
  const Matrix a = {2, 1, 0, 1, 2, 1, 0, 1, 2};
  const SymmetricEigen e = symmetric_eigen(a, 3);
  const std::vector<double> expected = {2 - std::sqrt(2.0), 2, 2 + std::sqrt(2.0)};
  BOOST_TEST_REQUIRE(e.values.size() == 3u);
  BOOST_TEST_REQUIRE(e.vectors.size() == 9u);
  for (int i = 0; i < 3; ++i) {
    BOOST_TEST(std::abs(e.values[i] - expected[i]) < 1e-14);
    // A v = lambda v for the unit vector in row i.
    for (int r = 0; r < 3; ++r) {
      double av = 0;
      for (int c = 0; c < 3; ++c) av += a[r * 3 + c] * e.vectors[i * 3 + c];
      BOOST_TEST(std::abs(av - expected[i] * e.vectors[i * 3 + r]) < 1e-14);
    }
  }

  // The second-difference matrix of size n: eigenvalues 2 - 2 cos(j pi / (n + 1)), j = 1..n.
  const int64_t n = 41;  // odd: the round-robin order pairs one index with nothing each round
  Matrix t(size_t(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    t[i * n + i] = 2;
    if (i + 1 < n) t[i * n + i + 1] = t[(i + 1) * n + i] = -1;
  }
  const SymmetricEigen te = symmetric_eigen(t, n, false);
  BOOST_TEST(te.vectors.empty());
  for (int64_t j = 1; j <= n; ++j)
    BOOST_TEST(std::abs(te.values[j - 1] - (2 - 2 * std::cos(double(j) * M_PI / double(n + 1)))) < 1e-13);

  // A negative and a repeated eigenvalue, hidden by a rotation; the vectors rebuild the matrix.
  const Matrix q = orthogonal(4, 3);
  const Matrix s = rotated(q, diagonal({5, 1, -3, 1}), 4);
  const SymmetricEigen se = symmetric_eigen(s, 4);
  const std::vector<double> sorted = {-3, 1, 1, 5};
  for (int i = 0; i < 4; ++i) BOOST_TEST(std::abs(se.values[i] - sorted[i]) < 1e-13);
  const Matrix rebuilt = multiply(multiply(transpose(se.vectors, 4), diagonal(se.values), 4), se.vectors, 4);
  for (int i = 0; i < 16; ++i) BOOST_TEST(std::abs(rebuilt[i] - s[i]) < 1e-13);
  const Matrix gram = multiply(se.vectors, transpose(se.vectors, 4), 4);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) BOOST_TEST(std::abs(gram[i * 4 + j] - (i == j)) < 1e-14);

  // Only the symmetric part counts: [[1, 2], [0, 1]] is read as [[1, 1], [1, 1]].
  const SymmetricEigen half = symmetric_eigen({1, 2, 0, 1}, 2);
  BOOST_TEST(std::abs(half.values[0]) < 1e-15);
  BOOST_TEST(std::abs(half.values[1] - 2) < 1e-15);
  BOOST_TEST(symmetric_eigen({-7}, 1).values == std::vector<double>{-7});
  BOOST_TEST(symmetric_eigen({3, 0, 0, -2}, 2).values == (std::vector<double>{-2, 3}));
}

BOOST_AUTO_TEST_CASE(fit_matches_a_hand_computation) {
  // Rows (1, 2), (3, 6), (5, 7): mean (3, 5); deviations (-2, -3), (0, 1), (2, 2);
  // covariance [[8, 10], [10, 14]] / 2.
  const std::vector<double> x = {1, 2, 3, 6, 5, 7};
  const std::vector<double> mean = {3, 5}, covariance = {4, 5, 5, 7};
  for (const Tensor& features : {rows(x, 3, 2), rows(x, 3, 2).to(DType::f32),
                                 // the same rows as a transposed (non-contiguous) view
                                 rows({1, 3, 5, 2, 6, 7}, 2, 3).t()}) {
    const GaussianFit f = fit_gaussian(features);
    BOOST_TEST(f.dim == 2);
    BOOST_TEST(f.count == 3);
    BOOST_TEST_REQUIRE(f.mean.size() == 2u);
    BOOST_TEST_REQUIRE(f.covariance.size() == 4u);
    for (int i = 0; i < 2; ++i) BOOST_TEST(std::abs(f.mean[i] - mean[i]) < 1e-14);
    for (int i = 0; i < 4; ++i) BOOST_TEST(std::abs(f.covariance[i] - covariance[i]) < 1e-14);
  }
}

BOOST_AUTO_TEST_CASE(distance_of_diagonal_gaussians_is_the_closed_form) {
  // |dmu|^2 = 1 + 0 + 4 + 0; sum (sqrt a - sqrt b)^2 = 1 + 0 + 4 + 0.25.
  const GaussianFit a = fit({0, 1, 2, 3}, diagonal({1, 4, 9, 0.25}));
  const GaussianFit b = fit({1, 1, 0, 3}, diagonal({4, 4, 1, 1}));
  BOOST_TEST(std::abs(frechet_distance(a, b) - 10.25) < 1e-13);
  BOOST_TEST(std::abs(frechet_distance(b, a) - 10.25) < 1e-13);
  BOOST_TEST(frechet_distance(a, a) == 0.0);

  // A zero variance (a degenerate Gaussian) is allowed: sqrt 0 = 0.
  const GaussianFit c = fit({0, 0}, diagonal({0, 2})), d = fit({0, 3}, diagonal({4, 8}));
  BOOST_TEST(std::abs(frechet_distance(c, d) - (9 + 4 + 2)) < 1e-13);
}

BOOST_AUTO_TEST_CASE(rotating_both_gaussians_leaves_the_distance_unchanged) {
  // The diagonal pair above, turned by one orthogonal matrix: no longer diagonal, same distance.
  const Matrix q4 = orthogonal(4, 11);
  const GaussianFit a = fit(rotated(q4, {0, 1, 2, 3}), rotated(q4, diagonal({1, 4, 9, 0.25}), 4));
  const GaussianFit b = fit(rotated(q4, {1, 1, 0, 3}), rotated(q4, diagonal({4, 4, 1, 1}), 4));
  BOOST_TEST(std::abs(a.covariance[1]) > 0.1);
  BOOST_TEST(std::abs(frechet_distance(a, b) - 10.25) < 1e-12);

  // Covariances that do not commute, so (S1 S2)^(1/2) is not sqrt(S1) sqrt(S2).
  const int64_t n = 12;
  const Matrix s1 = random_covariance(n, 21), s2 = random_covariance(n, 22);
  const std::vector<double> m1 = normal_values(n, 23), m2 = normal_values(n, 24);
  const double distance = frechet_distance(fit(m1, s1), fit(m2, s2));
  const Matrix q = orthogonal(n, 25);
  BOOST_TEST(relative_error(frechet_distance(fit(rotated(q, m1), rotated(q, s1, n)), fit(rotated(q, m2), rotated(q, s2, n))),
                            distance) < 1e-11);
  // The formula is symmetric in the two Gaussians; the computation is not.
  BOOST_TEST(relative_error(frechet_distance(fit(m2, s2), fit(m1, s1)), distance) < 1e-11);
}

BOOST_AUTO_TEST_CASE(distance_of_non_commuting_2x2_covariances_is_the_closed_form) {
  // For 2x2, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)), and S1 S2 has the eigenvalues of
  // sqrt(S1) S2 sqrt(S1): tr (S1 S2)^(1/2) = sqrt(tr(S1 S2) + 2 sqrt(det S1 det S2)).
  const Matrix s1 = {2, 0.5, 0.5, 1}, s2 = {1, -0.3, -0.3, 3};
  const double tr_product = s1[0] * s2[0] + s1[1] * s2[2] + s1[2] * s2[1] + s1[3] * s2[3];
  const double det1 = s1[0] * s1[3] - s1[1] * s1[2], det2 = s2[0] * s2[3] - s2[1] * s2[2];
  const double expected = 0.5 * 0.5 + 2 * 2 + trace(s1, 2) + trace(s2, 2) -
                          2 * std::sqrt(tr_product + 2 * std::sqrt(det1 * det2));
  BOOST_TEST(std::abs(frechet_distance(fit({0.5, -1}, s1), fit({0, 1}, s2)) - expected) < 1e-13);
}

BOOST_AUTO_TEST_CASE(distance_to_a_scaled_covariance_is_the_closed_form) {
  // S2 = c^2 S1: (S1 S2)^(1/2) = c S1, so FD = |dmu|^2 + (1 - c)^2 tr S1.
  const int64_t n = 24;
  const Matrix s1 = random_covariance(n, 31);
  Matrix s2 = s1;
  for (double& v : s2) v *= 2.25;
  std::vector<double> m1(size_t(n), 0.0), m2(size_t(n), 0.0);
  m2[5] = 3;
  BOOST_TEST(relative_error(frechet_distance(fit(m1, s1), fit(m2, s2)), 9 + 0.25 * trace(s1, n)) < 1e-12);
  BOOST_TEST(relative_error(frechet_distance(fit(m1, s1), fit(m2, s1)), 9.0) < 1e-12);
}

BOOST_AUTO_TEST_CASE(distance_between_sample_sets) {
  // Columns of different scales, and a few correlated ones.
  const int64_t n = 300, d = 32;
  std::vector<double> x = normal_values(n * d, 41);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t t = 0; t < d; ++t) x[i * d + t] = x[i * d + t] * (1 + double(t % 5)) + (t > 0 ? 0.5 * x[i * d + t - 1] : 0);
  const Tensor a = rows(x, n, d);
  const double spread = trace(fit_gaussian(a).covariance, d);
  BOOST_TEST(frechet_distance(a, a) < 1e-10 * spread);

  // A translate has the same covariance: FD = |shift|^2 exactly, whatever the covariance.
  std::vector<double> shifted = x;
  for (int64_t i = 0; i < n; ++i) shifted[i * d + 3] += 2, shifted[i * d + 17] -= 1;
  BOOST_TEST(std::abs(frechet_distance(a, rows(shifted, n, d)) - 5) < 1e-9 * spread);

  // Fewer rows than columns: a singular covariance, still ~0 against itself.
  const Tensor few = rows(std::vector<double>(x.begin(), x.begin() + 10 * d), 10, d);
  BOOST_TEST(frechet_distance(few, few) < 1e-6 * trace(fit_gaussian(few).covariance, d));

  // The tensor form is the fit form; f32 features agree with f64 to f32 precision.
  const Tensor b = rows(normal_values(200 * d, 42), 200, d);
  const double fd = frechet_distance(fit_gaussian(a), fit_gaussian(b));
  BOOST_TEST(frechet_distance(a, b) == fd);
  BOOST_TEST(fd > 1.0);
  BOOST_TEST(relative_error(frechet_distance(a.to(DType::f32), b.to(DType::f32)), fd) < 1e-5);
}

BOOST_AUTO_TEST_CASE(precision_recall_of_a_hand_made_line) {
  // One column; every distance is exact in double, so rows on a radius test "within".
  // Real 0, 1, 3, 7; generated 2.5, 4, 11, 12, 13, -30, -31.
  const Tensor real = rows({0, 1, 3, 7}, 4, 1), generated = rows({2.5, 4, 11, 12, 13, -30, -31}, 7, 1);
  // k = 1: real radii 1, 1, 2, 4 (the row itself excluded, else all 0) take in 2.5, 4 and 11
  // (4 from 7: on the radius). Generated radii 1.5, 1.5, 1, 1, 1, 1, 1 take in 3 and 1 (1.5
  // from 2.5: on the radius); 0 and 7 are missed.
  const PrecisionRecall k1 = knn_precision_recall(real, generated, 1);
  BOOST_TEST(k1.precision == 3.0 / 7);
  BOOST_TEST(k1.recall == 2.0 / 4);
  // k = 2: real radii 3, 2, 3, 6 take in 12 and 13 too (13 is 6 from 7); generated radii
  // 8.5, 7, 2, 1, 2, 32.5, 33.5 every real row (0 through -30's).
  const PrecisionRecall k2 = knn_precision_recall(real, generated, 2);
  BOOST_TEST(k2.precision == 5.0 / 7);
  BOOST_TEST(k2.recall == 1.0);
}

BOOST_AUTO_TEST_CASE(precision_recall_of_identical_distant_and_half_covering_sets) {
  const int64_t d = 8;
  std::vector<std::vector<double>> centres;
  for (int c = 0; c < 6; ++c) {
    std::vector<double> centre(size_t(d), 0.0);
    centre[c] = 100;
    centres.push_back(centre);
  }
  // Real: four clusters of 10 rows, 100 apart with a spread of 1.
  const std::vector<std::vector<double>> real_centres(centres.begin(), centres.begin() + 4);
  const std::vector<double> real_rows = clusters(real_centres, 10, 1, 51);
  const Tensor real = rows(real_rows, 40, d);

  for (int64_t k : {1, 3, 9}) {
    const PrecisionRecall same = knn_precision_recall(real, real, k);
    BOOST_TEST(same.precision == 1.0);
    BOOST_TEST(same.recall == 1.0);
  }
  std::vector<double> far = real_rows;
  for (double& v : far) v += 1000;
  const PrecisionRecall distant = knn_precision_recall(real, rows(far, 40, d), 3);
  BOOST_TEST(distant.precision == 0.0);
  BOOST_TEST(distant.recall == 0.0);

  // Generated: copies of the first two real clusters (20 rows) and two clusters of 15 where no
  // real row is. Precision 20 / 50; recall 20 / 40: the rows of clusters 3 and 4 are missed.
  std::vector<double> generated(real_rows.begin(), real_rows.begin() + 20 * d);
  const std::vector<double> novel = clusters({centres[4], centres[5]}, 15, 1, 52);
  generated.insert(generated.end(), novel.begin(), novel.end());
  const PrecisionRecall half = knn_precision_recall(real, rows(generated, 50, d), 3);
  BOOST_TEST(half.precision == 0.4);
  BOOST_TEST(half.recall == 0.5);
}

BOOST_AUTO_TEST_CASE(precision_recall_agree_with_the_definition) {
  // More than one block of inner products (up to 1024 rows) each way; sets that overlap in part.
  const int64_t d = 5, nr = 1100, ng = 1050;
  const std::vector<double> real = normal_values(nr * d, 61);
  std::vector<double> generated = normal_values(ng * d, 62);
  for (int64_t i = 0; i < ng * d; ++i) generated[i] = 1.1 * generated[i] + (i % d == 0 ? 1.5 : 0);
  for (int64_t k : {1, 3, 5}) {
    const PrecisionRecall got = knn_precision_recall(rows(real, nr, d), rows(generated, ng, d).to(DType::f32), k);
    std::vector<double> generated_f32(generated.size());
    for (size_t i = 0; i < generated.size(); ++i) generated_f32[i] = float(generated[i]);
    const PrecisionRecall expected = precision_recall_by_definition(real, generated_f32, d, k);
    BOOST_TEST(got.precision == expected.precision, "k " << k);
    BOOST_TEST(got.recall == expected.recall, "k " << k);
    BOOST_TEST((expected.precision > 0.3 && expected.precision < 0.99 && expected.recall > 0.3 && expected.recall < 0.99),
               "k " << k << ": precision " << expected.precision << ", recall " << expected.recall);
  }
}

BOOST_AUTO_TEST_CASE(bad_shapes_are_refused_by_name) {
  const Tensor x = Tensor::zeros({5, 3}), wide = Tensor::zeros({4, 4});
  check_error_names([&] { fit_gaussian(Tensor::zeros({6})); }, "[6]");
  check_error_names([&] { fit_gaussian(Tensor::zeros({2, 3, 4})); }, "[2, 3, 4]");
  check_error_names([&] { fit_gaussian(Tensor::zeros({1, 3})); }, "[1, 3]");
  check_error_names([&] { fit_gaussian(Tensor::zeros({4, 0})); }, "[4, 0]");
  check_error_names([&] { fit_gaussian(Tensor::zeros({4, 3}, DType::i64)); }, "i64");
  check_error_names([&] { fit_gaussian(rows({1, 2, NAN, 4}, 2, 2)); }, "row 1, column 0");
  check_error_names([&] { frechet_distance(x, wide); }, "[5, 3] and [4, 4]");
  check_error_names([&] { frechet_distance(fit({0, 0}, diagonal({1, 1})), fit({0, 0, 0}, diagonal({1, 1, 1}))); },
                    "2 and 3");
  check_error_names([&] { frechet_distance(fit({0, 0}, {1, 0, 0}), fit({0, 0}, diagonal({1, 1}))); }, "covariance of 3");
  check_error_names([&] { frechet_distance(GaussianFit{}, GaussianFit{}); }, "dim 0");
  check_error_names([&] { knn_precision_recall(x, wide); }, "[5, 3] and generated features [4, 4]");
  check_error_names([&] { knn_precision_recall(x, Tensor::zeros({3})); }, "[3]");
  check_error_names([&] { knn_precision_recall(x, Tensor::zeros({3, 3}), 3); }, "k = 3");  // k = rows of generated
  check_error_names([&] { knn_precision_recall(x, x, 5); }, "[5, 3]");
  check_error_names([&] { knn_precision_recall(x, x, 0); }, "k = 0");
  check_error_names([&] { symmetric_eigen({1, 2, 3}, 2); }, "2x2");
  check_error_names([&] { symmetric_eigen({1, INFINITY, INFINITY, 1}, 2); }, "inf");
}

BOOST_AUTO_TEST_SUITE_END()
