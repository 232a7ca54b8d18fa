#pragma once
// Linear probe: how much of a label is linearly readable from frozen features (image embeddings
// of CLIP/SigLIP, a ViT's pooled embedding ...). A multinomial logistic regression
//   minimise  mean_i CE(softmax(x_i W + b), y_i) + weight_decay * |W|^2 / 2
// (the bias is not decayed) on the training features, standardised by their own mean and std,
// scored by top-1 accuracy on both sets. The problem is convex and small (D x C weights), so it
// is solved full batch by L-BFGS with an Armijo backtracking line search from W = 0, b = 0, in
// f64, with the gradient written out ((softmax - one_hot) / N): no sampling and no graph, so the
// result is deterministic (same inputs and thread count, same numbers) and the probe runs the
// same inside a no-grad scope such as an evaluation. This is the solver scikit-learn's
// LogisticRegression uses by default, and CLIP's linear-probe protocol.
#include <cstdint>
#include <vector>

#include "autograd/tensor.h"

namespace tessera::nn {

struct LinearProbeOptions {
  int64_t steps = 1000;        // most L-BFGS iterations
  // lambda of lambda * |W|^2 / 2 (scikit-learn's C = 1 / (lambda N)). Small: on CLIP embeddings of
  // Fashion-MNIST a search (linear_probe_sweep) preferred 0 to 1e-6 over 1e-4 (65 % vs 59 %); it
  // keeps the optimum finite when classes are separable.
  double weight_decay = 1e-6;
  double tolerance = 1e-5;     // stop when the largest |gradient| entry falls below this
  int64_t history = 10;        // L-BFGS memory (pairs of steps and gradient changes)
};

struct LinearProbeResult {
  double train_accuracy = 0;
  double test_accuracy = 0;
  double final_loss = 0;  // the objective above at the solution
  int64_t steps = 0;      // L-BFGS iterations taken
  // The largest gradient entry reached `tolerance`, or a step lowered the loss by less than 2.2e-9
  // relative (SciPy's L-BFGS-B default, which scikit-learn uses).
  bool converged = false;
};

// Features [N, D] (f32 or f64), labels integer [N] in [0, classes). Throws naming the argument at
// fault: shapes, label range, fewer than 2 classes, no training examples, a non-finite loss.
LinearProbeResult linear_probe(const Tensor& train_features, const Tensor& train_labels, const Tensor& test_features,
                               const Tensor& test_labels, int64_t classes, const LinearProbeOptions& options = {});

// The weight decay chosen as CLIP's protocol does, on a validation split of the training set:
// every k-th training example (k = validation_every; indices k-1, 2k-1, ...) is held out, each
// value of `grid` is fit on the rest and scored on the held-out examples, the most accurate value
// wins (ties: the larger, i.e. the simpler model), and the probe is refit on all training features
// with it and scored on the test features. The test set plays no part in the choice.
struct WeightDecaySearch {
  std::vector<double> grid{0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1};
  int64_t validation_every = 5;
};

struct LinearProbeSweep {
  double weight_decay = 0;                  // the choice
  std::vector<double> validation_accuracy;  // per grid value
  LinearProbeResult result;                 // refit on all training features with the choice
};

// options.weight_decay is ignored (the grid replaces it). Needs at least validation_every
// training examples.
LinearProbeSweep linear_probe_sweep(const Tensor& train_features, const Tensor& train_labels,
                                    const Tensor& test_features, const Tensor& test_labels, int64_t classes,
                                    const LinearProbeOptions& options = {}, const WeightDecaySearch& search = {});

}  // namespace tessera::nn
