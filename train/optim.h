#pragma once
// Optimizers (SGD with momentum/Nesterov, Adam, AdamW) over parameter groups, gradient
// clipping, and the state a checkpoint needs to continue bit for bit.
//
// The updates follow torch.optim's formulas exactly (tests/train/test_optim.cpp checks them
// against a reference), with one simplification: the step count behind Adam's bias correction
// is the optimizer's, not per parameter (they differ only for parameters that sometimes get no
// gradient).
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nn/module.h"
#include "train/registry.h"

namespace tessera::train {

struct ParamGroup {
  std::string name;          // "decay", "no_decay", ...
  nn::NamedTensors params;
  double weight_decay = 0;
  double lr_scale = 1;       // this group's lr = optimizer lr * lr_scale
};

// A learning-rate multiplier for the parameters whose dotted name contains `pattern`.
struct LrScale {
  std::string pattern;
  double scale = 1;
};

// Reads the recipe's optim.lr_scales entries, "PATTERN=SCALE" (e.g. "text.=3"); a malformed
// entry or a scale that is not a positive number is an error naming the entry.
std::vector<LrScale> parse_lr_scales(const std::vector<std::string>& entries);

// Splits a model's parameters in two groups as timm does: `decay` gets weight_decay, while
// `no_decay` — tensors with at most one dimension (biases, norm scales) when `no_decay_1d`, and
// any whose dotted name contains one of `no_decay_names` (e.g. "pos_embed", "embed") — gets none.
// A parameter whose name matches one of `lr_scales` (the first that matches) goes to a group of
// its own with that lr_scale, named like "decay*3"; a pattern that takes no parameter is an
// error. Empty groups are dropped.
std::vector<ParamGroup> param_groups(const nn::Module& model, double weight_decay, bool no_decay_1d,
                                     const std::vector<std::string>& no_decay_names,
                                     const std::vector<LrScale>& lr_scales = {});

class Optimizer {
 public:
  explicit Optimizer(std::vector<ParamGroup> groups);
  virtual ~Optimizer() = default;
  virtual const char* name() const = 0;

  void set_lr(double lr) { lr_ = lr; }
  double lr() const { return lr_; }
  // One update from every parameter's grad(); parameters without a gradient are left alone.
  void step();
  int64_t steps() const { return steps_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }

  // Everything needed to continue exactly: `step` and every buffer as `<buffer>/<parameter>`.
  nn::NamedTensors state() const;
  // Restores state(); every buffer must be present with the right shape.
  void load_state(const std::map<std::string, Tensor>& state);

 protected:
  // Creates a zero buffer shaped like each parameter, named `<kind>/<parameter>`.
  void add_buffers(const std::string& kind);
  Tensor& buffer(const std::string& kind, const std::string& param) { return buffers_.at(kind + "/" + param); }
  // Updates one parameter in place; `step` counts from 1.
  virtual void update(const std::string& name, Tensor& param, const Tensor& grad, const ParamGroup& group, double lr,
                      int64_t step) = 0;

 private:
  std::vector<ParamGroup> groups_;
  std::map<std::string, Tensor> buffers_;
  double lr_ = 0;
  int64_t steps_ = 0;
};

struct SgdOptions {
  double momentum = 0, dampening = 0;
  bool nesterov = false;
};
struct AdamOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  bool decoupled = false;  // AdamW: decay the weights directly instead of adding wd * p to the gradient
};

std::unique_ptr<Optimizer> make_sgd(std::vector<ParamGroup> groups, SgdOptions options);
std::unique_ptr<Optimizer> make_adam(std::vector<ParamGroup> groups, AdamOptions options);

// sqrt of the sum of squares of every gradient, accumulated in double in parameter order.
double global_grad_norm(const std::vector<Tensor>& params);
// Scales every gradient by max_norm / norm when norm > max_norm (torch.nn.utils.clip_grad_norm_);
// returns the norm before clipping.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

// optim.type: each optimizer registers its factory beside its code (optim.cpp).
using OptimizerFactory = std::function<std::unique_ptr<Optimizer>(const Section& optim, std::vector<ParamGroup> groups)>;
Registry<OptimizerFactory>& optimizers();

}  // namespace tessera::train
