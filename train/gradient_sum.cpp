#include "train/gradient_sum.h"

#include <algorithm>
#include <cstring>


namespace tessera::train {

GradientSum::GradientSum(std::vector<Tensor> params) : params_(std::move(params)) {
  int64_t at = int64_t(params_.size());
  for (const Tensor& p : params_) offsets_.push_back(at), at += p.numel();
  flat_.assign(size_t(at), 0.f);
}

void GradientSum::add_current() {
  // The first part is copied and the next ones added, as ProcessGroup::ordered_sum copies rank 0's
  // values and adds the others' (0 + g is not g when g is -0).
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor g = params_[i].grad();
    float* sum = flat_.data() + offsets_[i];
    const int64_t n = params_[i].numel();
    const bool reached = g.defined();
    flat_[i] = (empty_ ? 0.f : flat_[i]) + (reached ? 1.f : 0.f);
    if (!reached) {
      if (empty_) std::fill(sum, sum + n, 0.f);
      continue;
    }
    const Tensor c = g.contiguous().to(DType::f32);
    const float* v = c.data<float>();
    if (empty_) std::memcpy(sum, v, size_t(n) * sizeof(float));
    else
      for (int64_t k = 0; k < n; ++k) sum[k] += v[k];
  }
  empty_ = false;
}

void GradientSum::reduce(const ProcessGroup& group) {
  if (empty_) std::fill(flat_.begin(), flat_.end(), 0.f), empty_ = false;  // a process whose parts were all empty
  group.ordered_sum(std::span<float>(flat_));
}

void GradientSum::write_back() {
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    p.zero_grad();
    if (empty_ || flat_[i] == 0.f) continue;
    Tensor g = Tensor::empty(p.shape());
    std::memcpy(g.data<float>(), flat_.data() + offsets_[i], size_t(p.numel()) * sizeof(float));
    p.set_grad(g);
  }
}

}  // namespace tessera::train
