#pragma once
// Statistics that compare a generative model's samples with real data in some feature space
// (FID's recipe, with any feature extractor: issue 19 uses a ViT classifier's features).
//   fit_gaussian          mean and unbiased (N - 1) covariance of features [N, D];
//   frechet_distance      |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two fits;
//   knn_precision_recall  improved precision and recall (Kynkäänniemi et al. 2019).
// Features may be f32 or f64; everything is computed in f64.
#include <cstdint>

#include <vector>

#include "autograd/tensor.h"

namespace tessera::nn {

struct GaussianFit {
  int64_t dim = 0;
  int64_t count = 0;               // rows the fit was made from
  std::vector<double> mean;        // [dim]
  std::vector<double> covariance;  // [dim * dim], row-major, unbiased
};

// features: [N, D], N >= 2, finite.
GaussianFit fit_gaussian(const Tensor& features);

// Never below 0: rounding can push the distance of two equal fits a hair under it.
double frechet_distance(const GaussianFit& a, const GaussianFit& b);
double frechet_distance(const Tensor& a, const Tensor& b);  // fits both

// precision: the fraction of `generated` rows within the k-th-nearest-neighbour radius of at least
// one `real` row, that radius measured among the real rows excluding the row itself ("within"
// includes the boundary); recall: the same with the roles swapped. Euclidean distances.
// Both sets [N, D] with one D and more than k rows; k >= 1.
struct PrecisionRecall {
  double precision = 0, recall = 0;
};
PrecisionRecall knn_precision_recall(const Tensor& real, const Tensor& generated, int64_t k = 3);

// Eigenvalues (ascending) and, when asked for, unit eigenvectors (row i belongs to values[i]) of a
// symmetric n x n row-major matrix, by cyclic Jacobi rotations. Only the matrix's symmetric part
// (A + A^T) / 2 is used. Eigenvalues are accurate to about 1e-14 of the matrix's Frobenius norm.
struct SymmetricEigen {
  std::vector<double> values;   // [n]
  std::vector<double> vectors;  // [n * n], or empty
};
SymmetricEigen symmetric_eigen(std::vector<double> matrix, int64_t n, bool with_vectors = true);

}  // namespace tessera::nn
