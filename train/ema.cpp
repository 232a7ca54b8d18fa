#include "train/ema.h"

#include "autograd/error.h"
#include "autograd/ops.h"

namespace tessera::train {

ParameterAverage::ParameterAverage(const nn::Module& model, double decay) : decay_(decay) {
  if (decay_ > 0)
    for (const auto& [name, p] : model.named_parameters()) average_.emplace_back(name, p.detach().clone());
}

void ParameterAverage::update(const nn::Module& model) {
  if (!enabled()) return;
  const nn::NamedTensors current = model.named_parameters();
  for (size_t i = 0; i < average_.size(); ++i) {
    Tensor& a = average_[i].second;
    mul_(a, decay_);
    add_(a, current[i].second.detach(), 1 - decay_);
  }
}

ParameterAverage::SwappedIn::SwappedIn(nn::Module& model, const ParameterAverage& average) : model_(model) {
  const nn::NamedTensors params = model_.named_parameters();
  for (size_t i = 0; i < average.average_.size(); ++i) {
    Tensor p = params[i].second;
    trained_.emplace_back(params[i].first, p.detach().clone());
    p.copy_(average.average_[i].second);
  }
}

ParameterAverage::SwappedIn::~SwappedIn() {
  const nn::NamedTensors params = model_.named_parameters();
  for (size_t i = 0; i < trained_.size(); ++i) {
    Tensor p = params[i].second;
    p.copy_(trained_[i].second);
  }
}

void ParameterAverage::restore(const std::map<std::string, Tensor>& weights) {
  if (!enabled()) return;
  if (weights.empty()) fail("train.ema_decay is set but the checkpoint holds no EMA weights");
  for (auto& [name, t] : average_) {
    const auto it = weights.find(name);
    if (it == weights.end()) fail("checkpoint: EMA weights lack '{}'", name);
    t.copy_(it->second);
  }
}

}  // namespace tessera::train
