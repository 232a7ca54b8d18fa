#pragma once
// Parameter initialisers (in place, outside autograd), matching PyTorch/timm conventions.
#include "autograd/random.h"
#include "autograd/tensor.h"

namespace tessera::nn::init {

void zeros_(Tensor& t);
void uniform_(Tensor& t, double low, double high, Generator& gen);
void normal_(Tensor& t, double mean, double std, Generator& gen);
// Normal(mean, std) truncated to [a, b] (absolute bounds, as timm's trunc_normal_), by inverse CDF.
void trunc_normal_(Tensor& t, double std, Generator& gen, double mean = 0, double a = -2, double b = 2);
// PyTorch's default for Linear/Conv weights: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform, a=sqrt(5)).
void kaiming_uniform_default_(Tensor& t, Generator& gen);
// fan_in and fan_out of a [out, in, k...] weight.
std::pair<int64_t, int64_t> fans(const Tensor& t);

}  // namespace tessera::nn::init
