#pragma once
// The reverse-mode engine. An op records a Node holding its inputs and a closure that maps the
// gradient of its output to gradients of its inputs; backward() walks the nodes from the loss in
// reverse topological order, accumulates, and frees the graph unless asked to keep it.
#include <functional>
#include <vector>

#include "autograd/tensor.h"

namespace tessera {

// Given d(loss)/d(output), returns d(loss)/d(input) for each input (undefined where not needed).
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

struct Node {
  const char* name = "";
  std::vector<Tensor> inputs;
  BackwardFn backward;
  bool released = false;  // the closure and inputs were freed by a backward without retain_graph
  Tensor grad_accumulator;  // filled while a backward runs
};

// Whether ops record history on this thread.
bool grad_enabled();

class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when recording is on and some input requires grad: the op should build a node.
bool needs_grad(std::initializer_list<const Tensor*> inputs);

// Attaches a node to `output` when needs_grad(inputs): `output` then requires grad, and
// `backward` is called with its gradient. Closures must save outputs with detach() so that
// the graph holds no cycle.
Tensor record(Tensor output, const char* name, std::vector<Tensor> inputs, BackwardFn backward);

void run_backward(const Tensor& root, const Tensor& gradient, bool retain_graph);

}  // namespace tessera
