#pragma once
// Module: the base of every layer and model. Parameters, buffers and submodules are registered
// in order under PyTorch-style dotted names (`blocks.0.attn.qkv.weight`), which is what
// checkpoints store and what a PyTorch port of the same model expects.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/tensor.h"

namespace tessera::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Trainable tensors, depth-first in registration order, with dotted names.
  NamedTensors named_parameters() const;
  std::vector<Tensor> parameters() const;
  // Non-trainable state that belongs in checkpoints (running statistics, EMA codebooks, ...).
  NamedTensors named_buffers() const;
  // Parameters then buffers: everything a checkpoint holds for this module.
  NamedTensors state() const;
  // Copies values into this module's tensors (shapes must match). With strict, a missing or
  // unexpected name is an error that names it.
  void load_state(const std::map<std::string, Tensor>& values, bool strict = true);

  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
  int64_t parameter_count() const;
  void zero_grad();

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

 protected:
  // Marks `value` as requiring grad and records it; returns the same handle.
  Tensor register_parameter(const std::string& name, Tensor value);
  Tensor register_buffer(const std::string& name, Tensor value);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }
  // Called by train(); layers whose behaviour differs between modes (Dropout) need nothing
  // more than is_training(), so this is rarely overridden.
  virtual void on_mode_change() {}

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void collect(const std::string& prefix, bool parameters, NamedTensors& out) const;

  NamedTensors parameters_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// A module with one input and one output, the unit Sequential chains.
class UnaryModule : public Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }
};

}  // namespace tessera::nn
