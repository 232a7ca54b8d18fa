#include "nn/feature_statistics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "autograd/error.h"
#include "kernels/gemm.h"
#include "kernels/threads.h"

namespace tessera::nn {

namespace {

// Jacobi stops when the off-diagonal part's Frobenius norm is this fraction of the whole
// matrix's (which rotations leave unchanged): every eigenvalue is then within that much of its
// diagonal entry. Convergence is quadratic, so the last sweep or two reach it from far above.
constexpr double kJacobiTolerance = 1e-14;
// Covariances of 192 and 512 features converge in 12-13 sweeps; the cap only guards against a
// loop that never ends.
constexpr int kMaxSweeps = 60;
// One block of inner products for the distances: about 32 MB, and 64..1024 rows (OpenBLAS's
// dgemm gets ~25% more done per CPU second at 1024 x 10,000 x 192 than at 256 rows).
constexpr int64_t kBlockDoubles = int64_t(1) << 22;
// Distances a thread takes at a time; small sets stay on the calling thread.
constexpr int64_t kGrainDistances = int64_t(1) << 16;

// A feature matrix [N, D] as row-major f64, after the checks every entry point shares.
std::vector<double> feature_rows(const Tensor& x, const char* op, const char* what) {
  if (!x.defined() || x.dim() != 2)
    fail("{}: {} features must be [N, D], got {}", op, what, x.defined() ? x.shape_string() : "undefined");
  if (!is_floating(x.dtype()))
    fail("{}: {} features {} must be f32 or f64, got {}", op, what, x.shape_string(), dtype_name(x.dtype()));
  if (x.size(1) == 0) fail("{}: {} features {} have no columns", op, what, x.shape_string());
  std::vector<double> v = x.to_vector<double>();
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]))
      fail("{}: {} features {} hold {} at row {}, column {}", op, what, x.shape_string(), v[i], i / size_t(x.size(1)),
           i % size_t(x.size(1)));
  return v;
}

void check_fit(const GaussianFit& f, const char* which) {
  if (f.dim < 1 || int64_t(f.mean.size()) != f.dim || int64_t(f.covariance.size()) != f.dim * f.dim)
    fail("frechet_distance: fit {} of dim {} has a mean of {} and a covariance of {} values (expected {} and {})", which,
         f.dim, f.mean.size(), f.covariance.size(), f.dim, f.dim * f.dim);
  for (double v : f.mean)
    if (!std::isfinite(v)) fail("frechet_distance: fit {} (dim {}) has a non-finite mean", which, f.dim);
  for (double v : f.covariance)
    if (!std::isfinite(v)) fail("frechet_distance: fit {} (dim {}) has a non-finite covariance", which, f.dim);
}

// One rotation of a round: it zeroes a[p][q], and a[p][p], a[q][q] become the new diagonal values.
struct Rotation {
  int64_t p, q;
  double c, s, app, aqq;
};

// The rotations of one round (disjoint pairs) together: A <- J^T A J, rows p and q of `vectors`
// turned as well. J^T A mixes rows, a contiguous pass; A J mixes columns, done row by row so the
// matrix is still read in order. (Rotating one pair at a time and copying rows into columns
// strides 4 KB at D = 512: 3-4x slower, measured.) One thread: a round at D = 512 is ~0.1 ms of
// work, and with a thread team per round, sweeps on a busy 2-core machine took 0.5-7 s instead of 0.1 s.
void apply_round(const std::vector<Rotation>& round, double* a, int64_t n, double* vectors) {
  auto turn = [](double* x, double* y, int64_t len, double c, double s) {
    for (int64_t k = 0; k < len; ++k) {
      const double u = x[k], v = y[k];
      x[k] = c * u - s * v;
      y[k] = s * u + c * v;
    }
  };
  for (const Rotation& r : round) {
    turn(a + r.p * n, a + r.q * n, n, r.c, r.s);
    if (vectors != nullptr) turn(vectors + r.p * n, vectors + r.q * n, n, r.c, r.s);
  }
  for (int64_t k = 0; k < n; ++k) {
    double* row = a + k * n;
    for (const Rotation& r : round) {
      const double u = row[r.p], v = row[r.q];
      row[r.p] = r.c * u - r.s * v;
      row[r.q] = r.s * u + r.c * v;
    }
  }
  // The 2x2 blocks exactly, from the values before the round.
  for (const Rotation& r : round) {
    a[r.p * n + r.p] = r.app;
    a[r.q * n + r.q] = r.aqq;
    a[r.p * n + r.q] = a[r.q * n + r.p] = 0;
  }
}

// C = op(A) op(B) in f64, row-major and dense.
void multiply(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const double* a, const double* b, double* c) {
  const kernels::GemmShape shape{.trans_a = trans_a, .trans_b = trans_b, .m = m, .n = n, .k = k,
                                 .lda = trans_a ? m : k, .ldb = trans_b ? k : n, .ldc = n};
  kernels::gemm_full_precision(shape, 1.0, a, b, 0.0, c);
}

void symmetrize(std::vector<double>& a, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) a[i * n + j] = a[j * n + i] = (a[i * n + j] + a[j * n + i]) / 2;
}

std::vector<double> squared_norms(const std::vector<double>& x, int64_t n, int64_t d) {
  std::vector<double> norms(size_t(n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t t = 0; t < d; ++t) norms[i] += x[i * d + t] * x[i * d + t];
  return norms;
}

// Squared Euclidean distance from |a|^2, |b|^2 and a.b; rounding can take it slightly below 0.
double squared_distance(double norm_a, double norm_b, double dot) { return std::max(0.0, norm_a + norm_b - 2 * dot); }

// Calls fn(first_row, rows, gram) for consecutive blocks of rows of `a`, where gram holds the inner
// products [rows, nb] of those rows with every row of `b` (one GEMM a block).
template <class Fn>
void for_each_gram_block(const std::vector<double>& a, int64_t na, const std::vector<double>& b, int64_t nb, int64_t d,
                         Fn fn) {
  const int64_t block_rows = std::min(na, std::clamp<int64_t>(kBlockDoubles / nb, 64, 1024));
  std::vector<double> gram(size_t(block_rows * nb));
  for (int64_t first = 0; first < na; first += block_rows) {
    const int64_t rows = std::min(block_rows, na - first);
    multiply(false, true, rows, nb, d, a.data() + first * d, b.data(), gram.data());
    fn(first, rows, gram.data());
  }
}

// Squared distance from each row of x to its k-th nearest other row. The k smallest distances
// of a row are kept in a max-heap while the row is read, so nothing is sorted or written back.
std::vector<double> knn_radii(const std::vector<double>& x, int64_t n, int64_t d, int64_t k) {
  const std::vector<double> norm = squared_norms(x, n, d);
  std::vector<double> radius(static_cast<size_t>(n));
  for_each_gram_block(x, n, x, n, d, [&](int64_t first, int64_t rows, const double* gram) {
    kernels::parallel_for(rows, std::max<int64_t>(1, kGrainDistances / n), [&](int64_t begin, int64_t end) {
      std::vector<double> nearest(static_cast<size_t>(k));
      for (int64_t r = begin; r < end; ++r) {
        const int64_t i = first + r;
        const double* dots = gram + r * n;
        std::fill(nearest.begin(), nearest.end(), std::numeric_limits<double>::infinity());
        for (int64_t j = 0; j < n; ++j) {
          const double dist = squared_distance(norm[i], norm[j], dots[j]);
          if (dist < nearest.front() && j != i) {  // a row is not its own neighbour
            std::pop_heap(nearest.begin(), nearest.end());
            nearest.back() = dist;
            std::push_heap(nearest.begin(), nearest.end());
          }
        }
        radius[i] = nearest.front();
      }
    });
  });
  return radius;
}

}  // namespace

SymmetricEigen symmetric_eigen(std::vector<double> a, int64_t n, bool with_vectors) {
  if (n < 1 || int64_t(a.size()) != n * n)
    fail("symmetric_eigen: a {}x{} matrix needs {} values, got {}", n, n, n * n, a.size());
  for (double v : a)
    if (!std::isfinite(v)) fail("symmetric_eigen: the {}x{} matrix holds {}", n, n, v);
  symmetrize(a, n);
  std::vector<double> vectors;
  if (with_vectors) {
    vectors.assign(size_t(n * n), 0.0);
    for (int64_t i = 0; i < n; ++i) vectors[i * n + i] = 1;
  }
  double total = 0;
  for (double v : a) total += v * v;
  // Elements below this are left alone: were every off-diagonal element below it, the
  // off-diagonal norm would already be under the tolerance.
  const double negligible = kJacobiTolerance * std::sqrt(total) / double(n);
  // Cyclic Jacobi in the round-robin order: each sweep is n - 1 rounds of n/2 disjoint pairs
  // (index 0 stays, the others turn one place a round), so every pair comes up once a sweep and a
  // whole round is applied in two passes over the matrix. An odd n plays against a dummy index.
  const int64_t players = n + (n & 1);
  std::vector<int64_t> ring(static_cast<size_t>(players));
  std::iota(ring.begin(), ring.end(), 0);
  std::vector<Rotation> round;
  for (int sweep = 0;; ++sweep) {
    double off = 0;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) off += 2 * a[p * n + q] * a[p * n + q];
    if (off <= kJacobiTolerance * kJacobiTolerance * total) break;
    if (sweep == kMaxSweeps)
      fail("symmetric_eigen: no convergence in {} sweeps on a {}x{} matrix (off-diagonal norm {:.3g} of {:.3g})", kMaxSweeps,
           n, n, std::sqrt(off), std::sqrt(total));
    for (int64_t r = 0; r + 1 < players; ++r) {
      round.clear();
      for (int64_t i = 0; i < players / 2; ++i) {
        const int64_t p = std::min(ring[i], ring[players - 1 - i]), q = std::max(ring[i], ring[players - 1 - i]);
        const double apq = q < n ? a[p * n + q] : 0;
        if (std::abs(apq) <= negligible) continue;
        const double app = a[p * n + p], aqq = a[q * n + q];
        const double theta = (aqq - app) / (2 * apq);
        // The smaller of the two angles that zero a[p][q] (|t| <= 1): the one that converges.
        const double t = std::copysign(1.0, theta) / (std::abs(theta) + std::hypot(theta, 1.0));
        const double c = 1 / std::sqrt(t * t + 1);
        round.push_back({.p = p, .q = q, .c = c, .s = t * c, .app = app - t * apq, .aqq = aqq + t * apq});
      }
      apply_round(round, a.data(), n, with_vectors ? vectors.data() : nullptr);
      std::rotate(ring.begin() + 1, ring.end() - 1, ring.end());
    }
  }

  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return a[i * n + i] < a[j * n + j]; });
  SymmetricEigen result;
  result.values.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) result.values[i] = a[order[i] * n + order[i]];
  if (with_vectors) {
    result.vectors.resize(size_t(n * n));
    for (int64_t i = 0; i < n; ++i)
      std::copy_n(vectors.begin() + order[i] * n, n, result.vectors.begin() + i * n);
  }
  return result;
}

GaussianFit fit_gaussian(const Tensor& features) {
  std::vector<double> x = feature_rows(features, "fit_gaussian", "the");
  const int64_t n = features.size(0), d = features.size(1);
  if (n < 2) fail("fit_gaussian: an unbiased covariance needs at least 2 rows, got features {}", features.shape_string());
  GaussianFit fit{.dim = d, .count = n, .mean = std::vector<double>(size_t(d), 0.0),
                  .covariance = std::vector<double>(size_t(d * d))};
  for (int64_t i = 0; i < n; ++i)
    for (int64_t t = 0; t < d; ++t) fit.mean[t] += x[i * d + t];
  for (double& m : fit.mean) m /= double(n);
  // Centred first, then X^T X: the one-pass sum of squares loses digits to the mean.
  for (int64_t i = 0; i < n; ++i)
    for (int64_t t = 0; t < d; ++t) x[i * d + t] -= fit.mean[t];
  multiply(true, false, d, d, n, x.data(), x.data(), fit.covariance.data());
  for (double& c : fit.covariance) c /= double(n - 1);
  symmetrize(fit.covariance, d);
  return fit;
}

double frechet_distance(const GaussianFit& a, const GaussianFit& b) {
  check_fit(a, "a");
  check_fit(b, "b");
  if (a.dim != b.dim) fail("frechet_distance: the fits have different dims, {} and {}", a.dim, b.dim);
  const int64_t d = a.dim;
  // tr (S1 S2)^(1/2) is the sum of square roots of the eigenvalues of sqrt(S1) S2 sqrt(S1), a
  // symmetric PSD matrix (no complex square root as in scipy's sqrtm). With S1 = E^T L E (rows of E
  // its eigenvectors) and W = L^(1/2) E, that matrix is E^T (W S2 W^T) E: W S2 W^T has the same
  // eigenvalues and costs one product less. Eigenvalues that rounding makes negative count as 0.
  const SymmetricEigen s1 = symmetric_eigen(a.covariance, d, true);
  std::vector<double> w = s1.vectors;
  for (int64_t i = 0; i < d; ++i) {
    const double root = std::sqrt(std::max(0.0, s1.values[i]));
    for (int64_t t = 0; t < d; ++t) w[i * d + t] *= root;
  }
  std::vector<double> ws2(size_t(d * d)), m(size_t(d * d));
  multiply(false, false, d, d, d, w.data(), b.covariance.data(), ws2.data());
  multiply(false, true, d, d, d, ws2.data(), w.data(), m.data());
  double trace_sqrt = 0;
  for (double lambda : symmetric_eigen(std::move(m), d, false).values) trace_sqrt += std::sqrt(std::max(0.0, lambda));

  double mean_term = 0, trace_a = 0, trace_b = 0;
  for (int64_t t = 0; t < d; ++t) {
    const double diff = a.mean[t] - b.mean[t];
    mean_term += diff * diff;
    trace_a += a.covariance[t * d + t];
    trace_b += b.covariance[t * d + t];
  }
  return std::max(0.0, mean_term + trace_a + trace_b - 2 * trace_sqrt);
}

double frechet_distance(const Tensor& a, const Tensor& b) {
  if (a.defined() && b.defined() && a.dim() == 2 && b.dim() == 2 && a.size(1) != b.size(1))
    fail("frechet_distance: features {} and {} differ in width", a.shape_string(), b.shape_string());
  return frechet_distance(fit_gaussian(a), fit_gaussian(b));
}

PrecisionRecall knn_precision_recall(const Tensor& real, const Tensor& generated, int64_t k) {
  const char* op = "knn_precision_recall";
  const std::vector<double> x = feature_rows(real, op, "real"), y = feature_rows(generated, op, "generated");
  const int64_t nx = real.size(0), ny = generated.size(0), d = real.size(1);
  if (generated.size(1) != d)
    fail("{}: real features {} and generated features {} differ in width", op, real.shape_string(),
         generated.shape_string());
  if (k < 1 || k >= nx || k >= ny)
    fail("{}: k = {} needs 1 <= k < rows in each set; real features {}, generated features {}", op, k, real.shape_string(),
         generated.shape_string());

  const std::vector<double> real_radius = knn_radii(x, nx, d, k), generated_radius = knn_radii(y, ny, d, k);
  const std::vector<double> norm_x = squared_norms(x, nx, d), norm_y = squared_norms(y, ny, d);
  // One pass over the generated x real inner products serves both directions: along each row for
  // precision, down each column for recall (split by columns, so no two threads write one flag).
  std::vector<char> generated_in(size_t(ny), 0), real_in(size_t(nx), 0);
  for_each_gram_block(y, ny, x, nx, d, [&](int64_t first, int64_t rows, const double* gram) {
    kernels::parallel_for(rows, std::max<int64_t>(1, kGrainDistances / nx), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const double* dots = gram + r * nx;
        const double norm = norm_y[first + r];
        int64_t j = 0;
        while (j < nx && squared_distance(norm, norm_x[j], dots[j]) > real_radius[j]) ++j;
        generated_in[first + r] = j < nx;
      }
    });
    kernels::parallel_for(nx, std::max<int64_t>(1, kGrainDistances / rows), [&](int64_t begin, int64_t end) {
      for (int64_t r = 0; r < rows; ++r) {
        const double* dots = gram + r * nx;
        const double norm = norm_y[first + r], radius = generated_radius[first + r];
        for (int64_t j = begin; j < end; ++j) real_in[j] |= char(squared_distance(norm, norm_x[j], dots[j]) <= radius);
      }
    });
  });
  return {.precision = double(std::count(generated_in.begin(), generated_in.end(), 1)) / double(ny),
          .recall = double(std::count(real_in.begin(), real_in.end(), 1)) / double(nx)};
}

}  // namespace tessera::nn
