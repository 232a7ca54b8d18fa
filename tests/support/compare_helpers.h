#pragma once
// Comparing tensors element by element in tests.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>

#include "autograd/tensor.h"

namespace tessera::test {

// The largest |a - b| over all elements (as f64); the shapes must match. 0 means equal values.
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  BOOST_REQUIRE(a.shape() == b.shape());
  const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::abs(va[i] - vb[i]));
  return m;
}

}  // namespace tessera::test
