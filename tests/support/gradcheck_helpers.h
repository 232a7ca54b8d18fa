#pragma once
// The two helpers every gradient-check test uses: an f64 leaf of uniform values, and a check
// that reports the checker's worst mismatch when it fails.
#include <boost/test/unit_test.hpp>

#include "autograd/gradcheck.h"
#include "autograd/random.h"
#include "autograd/tensor.h"

namespace tessera::test {

// An f64 tensor requiring grad, uniform in [low, high), reproducible from `seed`.
inline Tensor leaf(const Shape& shape, uint64_t seed, double low = -1, double high = 1) {
  Generator gen(seed);
  Tensor t = uniform(shape, low, high, gen, DType::f64);
  t.requires_grad_();
  return t;
}

// Gradient check with the default (f64) tolerances of autograd/gradcheck.h.
inline void expect_ok(const TensorFunction& f, const std::vector<Tensor>& inputs) {
  const GradcheckResult r = gradcheck(f, inputs);
  BOOST_TEST(r.ok, r.message);
}

}  // namespace tessera::test
