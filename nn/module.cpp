#include "nn/module.h"

#include <set>

#include "autograd/error.h"

namespace tessera::nn {

namespace {
void check_name(const std::string& name, const char* what) {
  if (name.empty() || name.find('.') != std::string::npos)
    fail("register_{}: name '{}' must be non-empty and contain no '.'", what, name);
}
}  // namespace

Tensor Module::register_parameter(const std::string& name, Tensor value) {
  check_name(name, "parameter");
  if (!is_floating(value.dtype())) fail("register_parameter: '{}' must be floating point", name);
  value.requires_grad_(true);
  parameters_.emplace_back(name, value);
  return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  check_name(name, "buffer");
  buffers_.emplace_back(name, value);
  return value;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  if (name.empty()) fail("register_module: empty name");
  if (!module) fail("register_module: '{}' is null", name);
  children_.emplace_back(name, std::move(module));
}

void Module::collect(const std::string& prefix, bool parameters, NamedTensors& out) const {
  for (const auto& [name, t] : parameters ? parameters_ : buffers_) out.emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", parameters, out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", true, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", false, out);
  return out;
}

NamedTensors Module::state() const {
  NamedTensors out = named_parameters();
  for (auto& entry : named_buffers()) out.push_back(entry);
  return out;
}

void Module::load_state(const std::map<std::string, Tensor>& values, bool strict) {
  std::set<std::string> used;
  for (auto& [name, t] : state()) {
    auto it = values.find(name);
    if (it == values.end()) {
      if (strict) fail("load_state: missing '{}' (shape {})", name, t.shape_string());
      continue;
    }
    if (it->second.shape() != t.shape())
      fail("load_state: '{}' has shape {} but the model expects {}", name, it->second.shape_string(), t.shape_string());
    Tensor dst = t;
    dst.copy_(it->second);
    used.insert(name);
  }
  if (strict)
    for (auto& [name, t] : values)
      if (!used.count(name)) fail("load_state: unexpected '{}' (shape {})", name, t.shape_string());
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

void Module::zero_grad() {
  for (auto& [name, t] : named_parameters()) {
    Tensor p = t;
    p.zero_grad();
  }
}

void Module::train(bool on) {
  training_ = on;
  on_mode_change();
  for (auto& [name, child] : children_) child->train(on);
}

}  // namespace tessera::nn
