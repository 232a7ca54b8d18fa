#pragma once
// The exponential moving average of a model's parameters (train.ema_decay): updated after every
// optimizer step, evaluated in place of the trained weights when eval.use_ema, and checkpointed.
#include <map>
#include <string>

#include "nn/module.h"

namespace tessera::train {

class ParameterAverage {
 public:
  // decay 0 keeps no average (every method below is then a no-op).
  ParameterAverage(const nn::Module& model, double decay);

  bool enabled() const { return !average_.empty(); }
  // average = decay * average + (1 - decay) * parameters
  void update(const nn::Module& model);

  // Puts the average into the model's parameters for its lifetime, then the trained ones back.
  class SwappedIn {
   public:
    SwappedIn(nn::Module& model, const ParameterAverage& average);
    ~SwappedIn();
    SwappedIn(const SwappedIn&) = delete;
    SwappedIn& operator=(const SwappedIn&) = delete;

   private:
    nn::Module& model_;
    nn::NamedTensors trained_;
  };

  const nn::NamedTensors& weights() const { return average_; }
  // From a checkpoint's ema/ group; every averaged parameter must be there.
  void restore(const std::map<std::string, Tensor>& weights);

 private:
  nn::NamedTensors average_;  // in the order of model.named_parameters()
  double decay_ = 0;
};

}  // namespace tessera::train
