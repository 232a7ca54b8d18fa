#pragma once
// Gradient checking by central finite differences. The output is projected onto a fixed random
// direction v (loss = sum(v * f(x))), so one backward gives the analytic vector-Jacobian product
// and each input element needs two forward evaluations: it checks every entry of v^T J.
//
// Tolerances: in f64 (what the tests use, as PyTorch's gradcheck does) eps = 1e-6 leaves a
// truncation error of O(eps^2) and a rounding error of O(1e-16 / eps), both far below the
// default atol 1e-6 + rtol 1e-4. In f32 the rounding error grows to ~1e-7/eps, so f32 checks
// use eps ~1e-2..1e-3 and tolerances near 1e-2: enough to catch a wrong formula, which is off
// by O(1), while a correct one never is.
#include <functional>
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace tessera {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-6;
  double rtol = 1e-4;
  uint64_t seed = 1234;  // of the projection direction
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0;
  std::string message;  // the worst mismatch: input, element, analytic and numeric values
};

using TensorFunction = std::function<Tensor(const std::vector<Tensor>&)>;

// Checks d f / d inputs[i] for every input that requires grad. Inputs keep their layout (a
// non-contiguous input is perturbed in place through its strides).
GradcheckResult gradcheck(const TensorFunction& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace tessera
