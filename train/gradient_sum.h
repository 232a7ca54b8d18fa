#pragma once
// The gradient of a step made of several micro-batches — train.accumulation parts in one process,
// or one part on each of N data-parallel processes — added in one fixed order, part after part:
// ((g0 + g1) + g2) + ... . Autograd's own accumulation adds each op's contribution straight into
// the running gradient, so its rounding would depend on how the parts are spread over processes;
// here every part's gradient is computed from nothing and added whole, by the same rule in one
// process and across processes (ProcessGroup::ordered_sum), which makes them bitwise equal.
#include <vector>

#include "autograd/tensor.h"
#include "train/process_group.h"

namespace tessera::train {

class GradientSum {
 public:
  explicit GradientSum(std::vector<Tensor> params);

  // Starts the next step's sum (the buffer is kept from step to step).
  void start() { empty_ = true; }
  // Adds the parameters' gradients of the part just back-propagated (the first part is copied).
  void add_current();
  // Sums the processes' sums in rank order (a no-op for one process).
  void reduce(const ProcessGroup& group);
  // Gives every parameter the summed gradient; one that no part reached keeps none, as after a
  // plain backward.
  void write_back();

 private:
  std::vector<Tensor> params_;
  std::vector<int64_t> offsets_;  // of each parameter's gradient in flat_
  // [how many parts reached each parameter (one slot per parameter)][all the gradients]
  std::vector<float> flat_;
  bool empty_ = true;
};

}  // namespace tessera::train
