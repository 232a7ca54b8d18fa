#include "autograd/engine.h"

#include <unordered_set>

#include "autograd/error.h"
#include "autograd/ops.h"

namespace tessera {
namespace {
thread_local bool g_grad_enabled = true;

void accumulate(Tensor& slot, const Tensor& g) {
  if (!slot.defined()) {
    // Take the gradient over when nothing else shares its storage; otherwise copy it, so a
    // later in-place accumulation cannot write into another tensor.
    slot = (g.is_contiguous() && g.storage().use_count() == 1 && g.offset() == 0) ? g.detach() : g.clone();
  } else {
    add_(slot, g);
  }
}

void accumulate_leaf(TensorImpl& leaf, const Tensor& g) {
  Tensor slot = leaf.grad ? Tensor(leaf.grad) : Tensor();
  accumulate(slot, g);
  leaf.grad = slot.impl_ptr();
}

// Nodes reachable from root, each after every node that consumes its output. Held by shared
// pointer: releasing a node's inputs during the walk must not free nodes still to be visited.
std::vector<std::shared_ptr<Node>> topological_order(const std::shared_ptr<Node>& root) {
  std::vector<std::shared_ptr<Node>> order;
  std::unordered_set<Node*> seen;
  std::vector<std::pair<std::shared_ptr<Node>, size_t>> stack{{root, 0}};
  seen.insert(root.get());
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (node->released)
      fail("backward: the graph through '{}' was already freed by an earlier backward(); "
           "call backward(grad, /*retain_graph=*/true) the first time to run it twice",
           node->name);
    if (next < node->inputs.size()) {
      const Tensor& in = node->inputs[next++];
      if (in.defined() && in.grad_fn() && !seen.count(in.grad_fn().get())) {
        seen.insert(in.grad_fn().get());
        stack.push_back({in.grad_fn(), 0});
      }
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }
  return {order.rbegin(), order.rend()};
}

}  // namespace

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

Tensor record(Tensor output, const char* name, std::vector<Tensor> inputs, BackwardFn backward) {
  if (!g_grad_enabled) return output;
  bool any = false;
  for (const Tensor& t : inputs) any = any || (t.defined() && t.requires_grad());
  if (!any) return output;
  auto node = std::make_shared<Node>();
  node->name = name;
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  output.impl().grad_fn = std::move(node);
  output.impl().requires_grad = true;
  return output;
}

void run_backward(const Tensor& root, const Tensor& gradient, bool retain_graph) {
  if (!is_floating(root.dtype()))
    fail("backward: the tensor {} is {}; integer tensors carry no gradient", root.shape_string(),
         dtype_name(root.dtype()));
  if (!root.requires_grad())
    fail("backward: the tensor {} does not require grad (no input of its graph has requires_grad)",
         root.shape_string());
  // A new handle on the caller's gradient: its storage is then shared, so accumulation copies
  // it instead of taking it over and later adding into the caller's tensor.
  Tensor seed = gradient.defined() ? gradient.detach() : Tensor();
  if (!seed.defined()) {
    if (root.numel() != 1)
      fail("backward: a gradient is needed for a non-scalar output of shape {}", root.shape_string());
    seed = Tensor::ones(root.shape(), root.dtype());
  } else if (seed.shape() != root.shape() || seed.dtype() != root.dtype()) {
    fail("backward: gradient {} {} does not match output {} {}", seed.shape_string(), dtype_name(seed.dtype()),
         root.shape_string(), dtype_name(root.dtype()));
  }
  NoGradGuard no_grad;
  if (root.is_leaf()) {
    accumulate_leaf(root.impl(), seed);
    return;
  }
  const std::vector<std::shared_ptr<Node>> order = topological_order(root.grad_fn());
  // If a backward function throws, no half-accumulated gradient may linger into the next run.
  struct ClearOnExit {
    const std::vector<std::shared_ptr<Node>>& nodes;
    ~ClearOnExit() {
      for (const auto& n : nodes) n->grad_accumulator = Tensor();
    }
  } clear_on_exit{order};
  accumulate(root.grad_fn()->grad_accumulator, seed);
  for (const std::shared_ptr<Node>& node : order) {
    Tensor g = std::move(node->grad_accumulator);
    node->grad_accumulator = Tensor();
    if (g.defined()) {
      std::vector<Tensor> grads = node->backward(g);
      if (grads.size() != node->inputs.size())
        fail("backward of '{}' returned {} gradients for {} inputs", node->name, grads.size(), node->inputs.size());
      for (size_t i = 0; i < grads.size(); ++i) {
        const Tensor& in = node->inputs[i];
        if (!in.defined() || !in.requires_grad() || !grads[i].defined()) continue;
        if (grads[i].shape() != in.shape())
          fail("backward of '{}': gradient {} for input {} of shape {}", node->name, grads[i].shape_string(), i,
               in.shape_string());
        if (in.grad_fn())
          accumulate(in.grad_fn()->grad_accumulator, grads[i]);
        else
          accumulate_leaf(in.impl(), grads[i]);
      }
    }
    if (!retain_graph) {
      node->released = true;
      node->inputs.clear();
      node->backward = nullptr;
    }
  }
}

}  // namespace tessera
