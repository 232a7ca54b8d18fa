#include "train/report/rollout.h"

namespace tessera::train {

std::vector<double> attention_rollout(const nn::ImageAttention& a, int64_t image) {
  const int64_t T = a.layers.front().size(1);
  std::vector<double> r(size_t(T * T), 0);
  for (int64_t i = 0; i < T; ++i) r[size_t(i * T + i)] = 1;
  for (const Tensor& layer : a.layers) {
    const std::vector<float> w = layer.select(0, image).contiguous().to_vector<float>();
    std::vector<double> mixed(size_t(T * T)), next(size_t(T * T), 0);
    for (int64_t i = 0; i < T; ++i) {
      double row = 0;
      for (int64_t j = 0; j < T; ++j) row += mixed[size_t(i * T + j)] = 0.5 * w[size_t(i * T + j)] + (i == j ? 0.5 : 0);
      for (int64_t j = 0; j < T; ++j) mixed[size_t(i * T + j)] /= row;
    }
    for (int64_t i = 0; i < T; ++i)
      for (int64_t k = 0; k < T; ++k)
        for (int64_t j = 0; j < T; ++j) next[size_t(i * T + j)] += mixed[size_t(i * T + k)] * r[size_t(k * T + j)];
    r.swap(next);
  }
  const int64_t first = a.cls_first ? 1 : 0, patches = T - first;
  std::vector<double> out(size_t(patches), 0);
  for (int64_t j = 0; j < patches; ++j) {
    if (a.cls_first) {
      out[size_t(j)] = r[size_t(j + 1)];
    } else {
      for (int64_t i = 0; i < T; ++i) out[size_t(j)] += r[size_t(i * T + j)] / double(T);
    }
  }
  return out;
}

}  // namespace tessera::train
