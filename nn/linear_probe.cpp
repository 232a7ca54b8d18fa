#include "nn/linear_probe.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <vector>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops.h"

namespace tessera::nn {
namespace {

constexpr const char* kOp = "linear_probe";

void check_features(const Tensor& x, const char* what) {
  if (!x.defined() || x.dim() != 2)
    fail("{}: {} must be [N, D], got {}", kOp, what, x.defined() ? x.shape_string() : "undefined");
  if (!is_floating(x.dtype())) fail("{}: {} must be floating point, got {}", kOp, what, dtype_name(x.dtype()));
}

std::vector<int64_t> checked_labels(const Tensor& labels, int64_t n, int64_t classes, const char* what) {
  if (!labels.defined() || labels.dim() != 1 || labels.size(0) != n || is_floating(labels.dtype()))
    fail("{}: {} labels must be integer [{}], got {}", kOp, what, n, labels.defined() ? labels.shape_string() : "undefined");
  std::vector<int64_t> y = labels.to_vector<int64_t>();
  for (int64_t v : y)
    if (v < 0 || v >= classes) fail("{}: {} label {} outside [0, {})", kOp, what, v, classes);
  return y;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

double max_abs(const std::vector<double>& a) {
  double m = 0;
  for (double v : a) m = std::max(m, std::fabs(v));
  return m;
}

// The regularised cross-entropy as a function of theta = [W (D x C, row-major), b (C)].
class Objective {
 public:
  Objective(Tensor x, const std::vector<int64_t>& y, int64_t classes, double weight_decay)
      : x_(std::move(x)), n_(x_.size(0)), d_(x_.size(1)), c_(classes), weight_decay_(weight_decay) {
    std::vector<double> hot(size_t(n_ * c_), 0.0);
    for (int64_t i = 0; i < n_; ++i) hot[size_t(i * c_ + y[size_t(i)])] = 1.0;
    one_hot_ = Tensor::from_vector(hot, {n_, c_});
  }
  int64_t size() const { return d_ * c_ + c_; }

  // The loss at theta; its gradient into `grad`.
  double operator()(const std::vector<double>& theta, std::vector<double>& grad) const {
    const auto [w, b] = split(theta);
    const Tensor log_p = log_softmax(matmul(x_, w) + b, 1);
    double decay = 0;
    for (int64_t i = 0; i < d_ * c_; ++i) decay += theta[size_t(i)] * theta[size_t(i)];
    const double loss = -sum(log_p * one_hot_).item() / double(n_) + 0.5 * weight_decay_ * decay;
    const Tensor g = (exp(log_p) - one_hot_) * (1.0 / double(n_));  // d loss / d logits
    const std::vector<double> gw = matmul(x_.t(), g).to_vector<double>(), gb = sum(g, {0}).to_vector<double>();
    grad.resize(theta.size());
    for (size_t i = 0; i < gw.size(); ++i) grad[i] = gw[i] + weight_decay_ * theta[i];
    std::copy(gb.begin(), gb.end(), grad.begin() + long(gw.size()));
    return loss;
  }

  std::pair<Tensor, Tensor> split(const std::vector<double>& theta) const {
    const auto mid = theta.begin() + long(d_ * c_);
    return {Tensor::from_vector(std::vector<double>(theta.begin(), mid), {d_, c_}),
            Tensor::from_vector(std::vector<double>(mid, theta.end()), {c_})};
  }

 private:
  Tensor x_, one_hot_;
  int64_t n_, d_, c_;
  double weight_decay_;
};

}  // namespace

LinearProbeResult linear_probe(const Tensor& train_features, const Tensor& train_labels, const Tensor& test_features,
                               const Tensor& test_labels, int64_t classes, const LinearProbeOptions& o) {
  check_features(train_features, "train features");
  check_features(test_features, "test features");
  if (train_features.size(1) != test_features.size(1))
    fail("{}: train features {} and test features {} differ in width", kOp, train_features.shape_string(),
         test_features.shape_string());
  if (train_features.size(0) == 0) fail("{}: no training examples", kOp);
  if (classes < 2) fail("{}: needs at least 2 classes, got {}", kOp, classes);
  if (o.steps < 0 || o.history < 1 || !(o.weight_decay >= 0) || !(o.tolerance >= 0))
    fail("{}: options need steps >= 0, history >= 1, weight_decay >= 0 and tolerance >= 0", kOp);
  const std::vector<int64_t> ytr = checked_labels(train_labels, train_features.size(0), classes, "train");
  const std::vector<int64_t> yte = checked_labels(test_labels, test_features.size(0), classes, "test");

  NoGradGuard no_grad;
  // Standardised by the training set's statistics, so one weight decay suits any feature scale.
  const Tensor x = train_features.detach().to(DType::f64);
  const Tensor mu = mean(x, {0}, true);
  const Tensor sd = sqrt(var(x, {0}, 0, true) + 1e-12);
  const Tensor xtr = ((x - mu) / sd).contiguous();
  const Tensor xte = ((test_features.detach().to(DType::f64) - mu) / sd).contiguous();
  const Objective objective(xtr, ytr, classes, o.weight_decay);

  // L-BFGS (Nocedal & Wright, algorithm 7.4) with Armijo backtracking.
  std::vector<double> theta(size_t(objective.size()), 0.0), grad;
  double loss = objective(theta, grad);
  if (!std::isfinite(loss)) fail("{}: the loss is {} at the start (non-finite features?)", kOp, loss);
  std::deque<std::vector<double>> s_hist, y_hist;
  std::deque<double> rho_hist;
  LinearProbeResult r;
  std::vector<double> next(theta.size()), next_grad, direction(theta.size());
  for (r.steps = 0; r.steps < o.steps; ++r.steps) {
    if (max_abs(grad) <= o.tolerance) {
      r.converged = true;
      break;
    }
    // direction = -H grad by the two-loop recursion; H0 = (s.y / y.y) I, or a step of at most 1
    // along -grad before any history.
    std::vector<double> q = grad, alpha(s_hist.size());
    for (size_t i = s_hist.size(); i-- > 0;) {
      alpha[i] = rho_hist[i] * dot(s_hist[i], q);
      for (size_t e = 0; e < q.size(); ++e) q[e] -= alpha[i] * y_hist[i][e];
    }
    const double gamma = s_hist.empty() ? 1.0 / std::max(1.0, std::sqrt(dot(grad, grad)))
                                        : dot(s_hist.back(), y_hist.back()) / dot(y_hist.back(), y_hist.back());
    for (double& v : q) v *= gamma;
    for (size_t i = 0; i < s_hist.size(); ++i) {
      const double beta = rho_hist[i] * dot(y_hist[i], q);
      for (size_t e = 0; e < q.size(); ++e) q[e] += s_hist[i][e] * (alpha[i] - beta);
    }
    for (size_t e = 0; e < q.size(); ++e) direction[e] = -q[e];
    double slope = dot(grad, direction);
    if (!(slope < 0)) {  // not a descent direction (lost curvature): restart from steepest descent
      s_hist.clear(), y_hist.clear(), rho_hist.clear();
      for (size_t e = 0; e < q.size(); ++e) direction[e] = -grad[e] * gamma;
      slope = dot(grad, direction);
    }
    double step = 1, next_loss = NAN;
    bool accepted = false;
    for (int tries = 0; tries < 50 && !accepted; ++tries, step *= 0.5) {
      for (size_t e = 0; e < theta.size(); ++e) next[e] = theta[e] + step * direction[e];
      next_loss = objective(next, next_grad);
      accepted = std::isfinite(next_loss) && next_loss <= loss + 1e-4 * step * slope;
    }
    if (!accepted) {  // no decrease along a descent direction: at the optimum to machine precision
      r.converged = true;
      break;
    }
    std::vector<double> s(theta.size()), y(theta.size());
    for (size_t e = 0; e < theta.size(); ++e) s[e] = next[e] - theta[e], y[e] = next_grad[e] - grad[e];
    const double sy = dot(s, y);
    if (sy > 1e-12 * std::sqrt(dot(s, s) * dot(y, y))) {
      s_hist.push_back(std::move(s)), y_hist.push_back(std::move(y)), rho_hist.push_back(1 / sy);
      if (int64_t(s_hist.size()) > o.history) s_hist.pop_front(), y_hist.pop_front(), rho_hist.pop_front();
    }
    // SciPy's L-BFGS-B test (factr 1e7): a step that lowers the loss by less than 2.2e-9 relative.
    const bool stalled = loss - next_loss <= 2.2e-9 * std::max({1.0, std::fabs(loss), std::fabs(next_loss)});
    theta.swap(next), grad.swap(next_grad), loss = next_loss;
    if (stalled) {
      r.converged = true;
      ++r.steps;
      break;
    }
  }
  r.final_loss = loss;

  const auto weights = objective.split(theta);
  const Tensor& w = weights.first;
  const Tensor& b = weights.second;
  auto accuracy = [&](const Tensor& features, const std::vector<int64_t>& y) {
    if (y.empty()) return 0.0;
    const std::vector<int64_t> p = argmax(matmul(features, w) + b, 1).to_vector<int64_t>();
    int64_t hits = 0;
    for (size_t i = 0; i < y.size(); ++i) hits += p[i] == y[i];
    return double(hits) / double(y.size());
  };
  r.train_accuracy = accuracy(xtr, ytr);
  r.test_accuracy = accuracy(xte, yte);
  return r;
}

LinearProbeSweep linear_probe_sweep(const Tensor& train_features, const Tensor& train_labels,
                                    const Tensor& test_features, const Tensor& test_labels, int64_t classes,
                                    const LinearProbeOptions& options, const WeightDecaySearch& search) {
  check_features(train_features, "train features");
  const int64_t n = train_features.size(0), k = search.validation_every;
  if (search.grid.empty()) fail("{}: the weight-decay grid is empty", kOp);
  if (k < 2) fail("{}: validation_every must be at least 2, got {}", kOp, k);
  if (n < k) fail("{}: a weight-decay search needs at least {} training examples, got {}", kOp, k, n);
  checked_labels(train_labels, n, classes, "train");
  std::vector<int64_t> fit, held_out;
  for (int64_t i = 0; i < n; ++i) (i % k == k - 1 ? held_out : fit).push_back(i);
  auto rows = [](const Tensor& t, const std::vector<int64_t>& r) {
    return index_select(t, 0, Tensor::from_vector(r, {int64_t(r.size())}));
  };
  NoGradGuard no_grad;
  const Tensor x_fit = rows(train_features.detach(), fit), y_fit = rows(train_labels, fit);
  const Tensor x_val = rows(train_features.detach(), held_out), y_val = rows(train_labels, held_out);
  LinearProbeSweep out;
  double best = -1;
  for (double wd : search.grid) {
    if (!(wd >= 0)) fail("{}: weight decays must be >= 0, got {}", kOp, wd);
    LinearProbeOptions o = options;
    o.weight_decay = wd;
    const double accuracy = linear_probe(x_fit, y_fit, x_val, y_val, classes, o).test_accuracy;
    out.validation_accuracy.push_back(accuracy);
    if (accuracy > best || (accuracy == best && wd > out.weight_decay)) best = accuracy, out.weight_decay = wd;
  }
  LinearProbeOptions o = options;
  o.weight_decay = out.weight_decay;
  out.result = linear_probe(train_features, train_labels, test_features, test_labels, classes, o);
  return out;
}

}  // namespace tessera::nn
