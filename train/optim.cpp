#include "train/optim.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "autograd/error.h"
#include "autograd/ops.h"
#include "kernels/adamw.h"

namespace tessera::train {

std::vector<LrScale> parse_lr_scales(const std::vector<std::string>& entries) {
  std::vector<LrScale> scales;
  for (const std::string& entry : entries) {
    const size_t eq = entry.rfind('=');
    double scale = 0;
    const char* end = entry.data() + entry.size();
    const bool number = eq != std::string::npos && std::from_chars(entry.data() + eq + 1, end, scale).ptr == end;
    if (!number || eq == 0 || eq + 1 == entry.size() || !(scale > 0) || !std::isfinite(scale))
      fail("optim.lr_scales: '{}' is not PATTERN=SCALE with a positive SCALE (e.g. 'text.=3')", entry);
    scales.push_back({entry.substr(0, eq), scale});
  }
  return scales;
}

std::vector<ParamGroup> param_groups(const nn::Module& model, double weight_decay, bool no_decay_1d,
                                     const std::vector<std::string>& no_decay_names,
                                     const std::vector<LrScale>& lr_scales) {
  // Group k of each kind holds the parameters whose first matching scale is lr_scales[k - 1];
  // group 0 those that match none.
  std::vector<ParamGroup> decay(lr_scales.size() + 1), no_decay(lr_scales.size() + 1);
  for (size_t k = 0; k <= lr_scales.size(); ++k) {
    const double scale = k == 0 ? 1.0 : lr_scales[k - 1].scale;
    const std::string suffix = k == 0 ? "" : fmt::format("*{}", scale);
    decay[k] = {"decay" + suffix, {}, weight_decay, scale};
    no_decay[k] = {"no_decay" + suffix, {}, 0, scale};
  }
  auto scale_group = [&](const std::string& name) {  // 1 + the first matching entry, or 0
    for (size_t k = 0; k < lr_scales.size(); ++k)
      if (name.find(lr_scales[k].pattern) != std::string::npos) return k + 1;
    return size_t(0);
  };
  for (const auto& [name, p] : model.named_parameters()) {
    bool skip = no_decay_1d && p.dim() <= 1;
    for (const std::string& pattern : no_decay_names) skip = skip || name.find(pattern) != std::string::npos;
    (skip ? no_decay : decay)[scale_group(name)].params.emplace_back(name, p);
  }
  // A pattern that takes no parameter is almost always a typo; say so rather than train without it.
  for (size_t k = 1; k <= lr_scales.size(); ++k)
    if (decay[k].params.empty() && no_decay[k].params.empty()) {
      std::vector<std::string> tops;  // the model's top-level names, to show what patterns can match
      for (const auto& [name, p] : model.named_parameters()) {
        const std::string top = name.substr(0, name.find('.'));
        if (std::find(tops.begin(), tops.end(), top) == tops.end()) tops.push_back(top);
      }
      fail("optim.lr_scales: '{}' matches no parameter that an earlier entry has not taken (top-level names: {})",
           lr_scales[k - 1].pattern, fmt::join(tops, ", "));
    }
  std::vector<ParamGroup> groups;
  for (auto* kind : {&decay, &no_decay})
    for (ParamGroup& g : *kind)
      if (!g.params.empty()) groups.push_back(std::move(g));
  return groups;
}

Optimizer::Optimizer(std::vector<ParamGroup> groups) : groups_(std::move(groups)) {
  for (const ParamGroup& g : groups_)
    for (const auto& [name, p] : g.params)
      if (!p.is_contiguous() || !is_floating(p.dtype()))
        fail("optimizer: parameter '{}' must be a contiguous floating-point tensor", name);
}

void Optimizer::add_buffers(const std::string& kind) {
  for (const ParamGroup& g : groups_)
    for (const auto& [name, p] : g.params) buffers_[kind + "/" + name] = Tensor::zeros(p.shape(), p.dtype());
}

void Optimizer::step() {
  ++steps_;
  for (const ParamGroup& g : groups_)
    for (const auto& [name, p] : g.params) {
      const Tensor grad = p.grad();
      if (!grad.defined()) continue;
      if (grad.shape() != p.shape() || grad.dtype() != p.dtype())
        fail("optimizer: gradient of '{}' is {} {}, parameter is {} {}", name, dtype_name(grad.dtype()),
             grad.shape_string(), dtype_name(p.dtype()), p.shape_string());
      Tensor param = p;
      update(name, param, grad.contiguous(), g, lr_ * g.lr_scale, steps_);
    }
}

nn::NamedTensors Optimizer::state() const {
  nn::NamedTensors out{{"step", Tensor::scalar(double(steps_), DType::i64)}};
  for (const auto& [name, t] : buffers_) out.emplace_back(name, t);
  return out;
}

void Optimizer::load_state(const std::map<std::string, Tensor>& state) {
  const auto step = state.find("step");
  if (step == state.end()) fail("optimizer state: missing 'step'");
  steps_ = int64_t(step->second.item());
  for (auto& [name, t] : buffers_) {
    const auto it = state.find(name);
    if (it == state.end()) fail("optimizer state: missing '{}' (a {} optimizer needs it)", name, this->name());
    if (it->second.shape() != t.shape())
      fail("optimizer state: '{}' has shape {}, expected {}", name, it->second.shape_string(), t.shape_string());
    t.copy_(it->second);
  }
}

namespace {

template <class T>
void sgd_update(T* p, const T* g, T* buf, int64_t n, double lr, double wd, const SgdOptions& o, bool first) {
  for (int64_t i = 0; i < n; ++i) {
    T d = g[i];
    if (wd != 0) d += T(wd) * p[i];
    if (o.momentum != 0) {
      buf[i] = first ? d : T(o.momentum) * buf[i] + T(1 - o.dampening) * d;
      d = o.nesterov ? d + T(o.momentum) * buf[i] : buf[i];
    }
    p[i] -= T(lr) * d;
  }
}

class Sgd : public Optimizer {
 public:
  Sgd(std::vector<ParamGroup> groups, SgdOptions o) : Optimizer(std::move(groups)), o_(o) {
    if (o.nesterov && (o.momentum <= 0 || o.dampening != 0)) fail("sgd: nesterov needs momentum > 0 and no dampening");
    if (o.momentum != 0) add_buffers("momentum_buffer");
  }
  const char* name() const override { return "sgd"; }

 protected:
  void update(const std::string& name, Tensor& p, const Tensor& g, const ParamGroup& group, double lr, int64_t step) override {
    visit_dtype(p.dtype(), [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_floating_point_v<T>) {
        T* buf = o_.momentum != 0 ? buffer("momentum_buffer", name).data<T>() : nullptr;
        sgd_update(p.data<T>(), g.data<T>(), buf, p.numel(), lr, group.weight_decay, o_, step == 1);
      }
    });
  }

 private:
  SgdOptions o_;
};

// Adam with L2 weight decay (coupled): AdamW goes through the fused kernel (kernels/adamw.h).
template <class T>
[[gnu::optimize("tree-vectorize")]] void adam_update(T* __restrict p, const T* __restrict g, T* __restrict m,
                                                     T* __restrict v, int64_t n, double lr, double wd,
                                                     const AdamOptions& o, int64_t step) {
  const double bias1 = 1 - std::pow(o.beta1, double(step)), bias2 = 1 - std::pow(o.beta2, double(step));
  const T step_size = T(lr / bias1), inv_sqrt_bias2 = T(1 / std::sqrt(bias2)), eps = T(o.eps);
  const T b1 = T(o.beta1), b2 = T(o.beta2), decay = T(1 - lr * wd), l2 = T(wd);
  const T keep = o.decoupled ? decay : T(1), coupled = o.decoupled ? T(0) : l2;
  for (int64_t i = 0; i < n; ++i) {
    const T d = g[i] + coupled * p[i];
    p[i] *= keep;
    m[i] = b1 * m[i] + (1 - b1) * d;
    v[i] = b2 * v[i] + (1 - b2) * d * d;
    p[i] -= step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_bias2 + eps);
  }
}

class Adam : public Optimizer {
 public:
  Adam(std::vector<ParamGroup> groups, AdamOptions o) : Optimizer(std::move(groups)), o_(o) {
    add_buffers("exp_avg");
    add_buffers("exp_avg_sq");
  }
  const char* name() const override { return o_.decoupled ? "adamw" : "adam"; }

 protected:
  void update(const std::string& name, Tensor& p, const Tensor& g, const ParamGroup& group, double lr, int64_t step) override {
    visit_dtype(p.dtype(), [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_floating_point_v<T>) {
        T *m = buffer("exp_avg", name).data<T>(), *v = buffer("exp_avg_sq", name).data<T>();
        if (o_.decoupled)
          kernels::adamw_update(p.data<T>(), g.data<T>(), m, v, p.numel(),
                                kernels::AdamWHyper{lr, o_.beta1, o_.beta2, o_.eps, group.weight_decay, step});
        else
          adam_update(p.data<T>(), g.data<T>(), m, v, p.numel(), lr, group.weight_decay, o_, step);
      }
    });
  }

 private:
  AdamOptions o_;
};

}  // namespace

std::unique_ptr<Optimizer> make_sgd(std::vector<ParamGroup> groups, SgdOptions options) {
  return std::make_unique<Sgd>(std::move(groups), options);
}
std::unique_ptr<Optimizer> make_adam(std::vector<ParamGroup> groups, AdamOptions options) {
  return std::make_unique<Adam>(std::move(groups), options);
}

namespace {
// Eight partial sums in a fixed pattern: fast, and the same result on every run.
template <class T>
double sum_of_squares(const T* x, int64_t n) {
  double partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) partial[k] += double(x[i + k]) * double(x[i + k]);
  for (; i < n; ++i) partial[0] += double(x[i]) * double(x[i]);
  return ((partial[0] + partial[1]) + (partial[2] + partial[3])) + ((partial[4] + partial[5]) + (partial[6] + partial[7]));
}
}  // namespace

double global_grad_norm(const std::vector<Tensor>& params) {
  double total = 0;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    const Tensor c = g.contiguous();
    if (c.dtype() == DType::f32) total += sum_of_squares(c.data<float>(), c.numel());
    else if (c.dtype() == DType::f64) total += sum_of_squares(c.data<double>(), c.numel());
    else fail("gradient norm: gradients must be f32 or f64, got {}", dtype_name(c.dtype()));
  }
  return std::sqrt(total);
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  const double norm = global_grad_norm(params);
  if (norm > max_norm && std::isfinite(norm)) {
    const double scale = max_norm / (norm + 1e-6);
    for (const Tensor& p : params) {
      Tensor g = p.grad();
      if (g.defined()) mul_(g, scale);
    }
  }
  return norm;
}

}  // namespace tessera::train

// ---- recipe registrations (optim.type) ----
namespace tessera::train {

Registry<OptimizerFactory>& optimizers() {
  static Registry<OptimizerFactory> registry("optimizer");
  return registry;
}

namespace {

AdamOptions adam_options(const Section& s, bool decoupled) {
  const std::vector<double> betas = s.numbers("betas");
  if (betas.size() != 2 || betas[0] < 0 || betas[0] >= 1 || betas[1] < 0 || betas[1] >= 1)
    fail("{}.betas: expected two numbers in [0, 1), got {} values", s.path(), betas.size());
  return AdamOptions{betas[0], betas[1], s.number("eps"), decoupled};
}

std::vector<Field> adam_fields() {
  return {number_list("betas", "[0.9, 0.999]", "decay rates of the first and second moment estimates"),
          number("eps", 1e-8, "added to the denominator for stability", 0)};
}

const Registration<OptimizerFactory> sgd_registration{
    optimizers(),
    {"sgd", "stochastic gradient descent with optional (Nesterov) momentum; weight decay is L2", "",
     {number("momentum", 0.9, "momentum factor (0 = plain SGD)", 0, 1), number("dampening", 0, "dampening of momentum", 0, 1),
      boolean("nesterov", false, "Nesterov momentum")},
     [](const Section& s, std::vector<ParamGroup> groups) {
       return make_sgd(std::move(groups), SgdOptions{s.number("momentum"), s.number("dampening"), s.boolean("nesterov")});
     }}};

const Registration<OptimizerFactory> adam_registration{
    optimizers(),
    {"adam", "Adam; weight decay is L2 (added to the gradient)", "", adam_fields(),
     [](const Section& s, std::vector<ParamGroup> groups) { return make_adam(std::move(groups), adam_options(s, false)); }}};

const Registration<OptimizerFactory> adamw_registration{
    optimizers(),
    {"adamw", "AdamW: Adam with decoupled weight decay", "", adam_fields(),
     [](const Section& s, std::vector<ParamGroup> groups) { return make_adam(std::move(groups), adam_options(s, true)); }}};

}  // namespace
}  // namespace tessera::train
