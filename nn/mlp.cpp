#include "nn/mlp.h"

#include "autograd/error.h"
#include "autograd/ops.h"

namespace tessera::nn {

FlattenMLP::FlattenMLP(int64_t in, const std::vector<int64_t>& hidden, int64_t out, Activation act, Generator& gen)
    : in_features(in), activation(act) {
  int64_t width = in;
  std::vector<int64_t> widths = hidden;
  widths.push_back(out);
  for (size_t i = 0; i < widths.size(); ++i) {
    layers.push_back(std::make_shared<Linear>(width, widths[i], true, gen));
    width = widths[i];
  }
  // Registered under "layers.<i>" through a container module, as PyTorch's ModuleList.
  struct List : Module {
    void add(const std::string& name, std::shared_ptr<Module> m) { register_module(name, std::move(m)); }
  };
  auto list = std::make_shared<List>();
  for (size_t i = 0; i < layers.size(); ++i) list->add(std::to_string(i), layers[i]);
  register_module("layers", list);
}

Tensor FlattenMLP::forward(const Tensor& x) {
  if (x.dim() < 2 || x.numel() / std::max<int64_t>(x.size(0), 1) != in_features)
    fail("FlattenMLP: input {} does not flatten to [batch, {}]", x.shape_string(), in_features);
  Tensor h = x.dim() == 2 ? x : x.reshape({x.size(0), in_features});
  for (size_t i = 0; i < layers.size(); ++i) {
    h = layers[i]->forward(h);
    if (i + 1 < layers.size()) h = activate(h, activation);
  }
  return h;
}

}  // namespace tessera::nn
