// Gradient checks (f64 finite differences, autograd/gradcheck.h) for the spatial and
// normalisation ops under nn layers: conv2d, conv_transpose2d, group_norm, avg_pool2d,
// upsample_nearest2d, dropout and drop_path.
#include <boost/test/unit_test.hpp>

#include "tests/support/gradcheck_helpers.h"
#include "autograd/ops/conv.h"
#include "autograd/ops/pool.h"
#include "autograd/ops/dropout.h"
#include "autograd/error.h"
#include "autograd/gradcheck.h"
#include "autograd/ops/group_norm.h"
#include "autograd/ops.h"
#include "autograd/random.h"

using namespace tessera;
using test::leaf;
using test::expect_ok;

namespace {
// Conv2d through every gradient: input, weight and bias.
void check_conv(const Shape& x_shape, const Shape& w_shape, bool bias, Conv2dOptions o, uint64_t seed) {
  std::vector<Tensor> in{leaf(x_shape, seed), leaf(w_shape, seed + 1)};
  if (bias) in.push_back(leaf({w_shape[0]}, seed + 2));
  expect_ok([o](auto& v) { return conv2d(v[0], v[1], v.size() > 2 ? v[2] : Tensor(), o); }, in);
}

void check_conv_transpose(const Shape& x_shape, const Shape& w_shape, bool bias, ConvTranspose2dOptions o,
                          uint64_t seed) {
  std::vector<Tensor> in{leaf(x_shape, seed), leaf(w_shape, seed + 1)};
  if (bias) in.push_back(leaf({w_shape[1] * o.groups}, seed + 2));
  expect_ok([o](auto& v) { return conv_transpose2d(v[0], v[1], v.size() > 2 ? v[2] : Tensor(), o); }, in);
}
}  // namespace

BOOST_AUTO_TEST_SUITE(conv_gradcheck)

BOOST_AUTO_TEST_CASE(conv2d_plain_and_padded) {
  check_conv({2, 3, 5, 5}, {4, 3, 3, 3}, true, {}, 10);
  check_conv({2, 3, 5, 4}, {4, 3, 3, 3}, true, {.padding = {1, 1}}, 20);
  check_conv({1, 2, 4, 4}, {3, 2, 1, 1}, false, {}, 30);
  check_conv({3, 2, 4, 5}, {2, 2, 2, 3}, true, {.padding = {1, 0}}, 40);  // non-square kernel, batch 3
  // more than 16 output channels and wide padding: stride 1 on exact (not wide) column rows
  check_conv({2, 2, 4, 4}, {17, 2, 3, 3}, true, {.padding = {1, 1}}, 45);
}

BOOST_AUTO_TEST_CASE(conv2d_stride_dilation_groups) {
  check_conv({2, 3, 7, 6}, {4, 3, 3, 3}, true, {.stride = {2, 2}, .padding = {1, 1}}, 50);
  check_conv({2, 2, 7, 7}, {3, 2, 3, 3}, true, {.stride = {2, 1}, .padding = {2, 1}, .dilation = {2, 2}}, 60);
  check_conv({2, 4, 5, 5}, {6, 2, 3, 3}, true, {.padding = {1, 1}, .groups = 2}, 70);
  check_conv({1, 4, 6, 6}, {4, 1, 3, 3}, false, {.stride = {2, 2}, .padding = {1, 1}, .groups = 4}, 80);  // depthwise
  check_conv({2, 2, 6, 6}, {2, 2, 4, 4}, true, {.stride = {2, 2}, .padding = {1, 1}}, 90);  // 4x4 stride 2 downsample
}

BOOST_AUTO_TEST_CASE(conv2d_non_contiguous_operands) {
  // x seen through a permute ([N, H, W, C] storage), weight through a transpose.
  const Tensor x = leaf({2, 5, 6, 3}, 100), w = leaf({3, 4, 3, 3}, 101), b = leaf({4}, 102);
  expect_ok(
      [](auto& v) {
        return conv2d(v[0].permute({0, 3, 1, 2}), v[1].transpose(0, 1), v[2], {.stride = {2, 1}, .padding = {1, 1}});
      },
      {x, w, b});
}

BOOST_AUTO_TEST_CASE(conv_transpose2d_variants) {
  check_conv_transpose({2, 3, 3, 3}, {3, 2, 3, 3}, true, {}, 110);
  check_conv_transpose({2, 3, 3, 4}, {3, 2, 3, 3}, true, {.stride = {2, 2}, .padding = {1, 1}, .output_padding = {1, 1}},
                       120);
  check_conv_transpose({1, 4, 3, 3}, {4, 3, 3, 3}, true, {.stride = {2, 3}, .padding = {1, 0}, .groups = 2}, 130);
  check_conv_transpose({2, 2, 3, 3}, {2, 2, 2, 3}, false,
                       {.stride = {1, 2}, .padding = {0, 1}, .output_padding = {1, 1}, .dilation = {2, 1}}, 140);
  check_conv_transpose({2, 2, 4, 4}, {2, 3, 4, 4}, true, {.stride = {2, 2}, .padding = {1, 1}}, 150);  // 2x upsample
}

BOOST_AUTO_TEST_CASE(conv_transpose2d_non_contiguous_input) {
  const Tensor x = leaf({3, 4, 2, 2}, 160), w = leaf({2, 2, 3, 3}, 161);
  expect_ok([](auto& v) { return conv_transpose2d(v[0].permute({3, 2, 0, 1}), v[1], Tensor(), {.stride = {2, 2}}); },
            {x, w});
}

BOOST_AUTO_TEST_CASE(one_operand_at_a_time) {
  // Each gradient alone (the others constants) takes its own path through the backward.
  Generator gen(170);
  const Tensor x = leaf({2, 3, 4, 4}, 171), w = uniform({3, 2, 3, 3}, -1, 1, gen, DType::f64);
  expect_ok([w](auto& v) { return conv_transpose2d(v[0], w, Tensor(), {.stride = {2, 2}, .padding = {1, 1}}); }, {x});
  expect_ok([w](auto& v) { return conv2d(v[0], w.transpose(0, 1), Tensor(), {.padding = {1, 1}}); }, {x});
  const Tensor cx = uniform({2, 3, 4, 4}, -1, 1, gen, DType::f64), wl = leaf({3, 2, 3, 3}, 172);
  expect_ok([cx](auto& v) { return conv_transpose2d(cx, v[0], Tensor(), {.stride = {2, 2}, .padding = {1, 1}}); }, {wl});
  expect_ok([cx](auto& v) { return conv2d(cx, v[0].transpose(0, 1), Tensor(), {.padding = {1, 1}}); }, {wl});
}

BOOST_AUTO_TEST_CASE(group_norm_affine_and_plain) {
  const Tensor x = leaf({2, 6, 3, 3}, 200), w = leaf({6}, 201, 0.5, 1.5), b = leaf({6}, 202);
  expect_ok([](auto& v) { return group_norm(v[0], 3, v[1], v[2]); }, {x, w, b});
  expect_ok([](auto& v) { return group_norm(v[0], 1, v[1], v[2], 1e-3); }, {x, w, b});
  expect_ok([](auto& v) { return group_norm(v[0], 6, v[1], v[2]); }, {x, w, b});  // instance norm
  expect_ok([](auto& v) { return group_norm(v[0], 2); }, {x});
  const Tensor seq = leaf({3, 4, 5}, 203);  // [N, C, L]
  expect_ok([](auto& v) { return group_norm(v[0], 2); }, {seq});
}

BOOST_AUTO_TEST_CASE(group_norm_non_contiguous_input) {
  const Tensor x = leaf({2, 3, 3, 4}, 210), w = leaf({4}, 211), b = leaf({4}, 212);
  expect_ok([](auto& v) { return group_norm(v[0].permute({0, 3, 1, 2}), 2, v[1], v[2]); }, {x, w, b});
}

BOOST_AUTO_TEST_CASE(pooling_and_upsampling) {
  const Tensor x = leaf({2, 3, 6, 5}, 300);
  expect_ok([](auto& v) { return avg_pool2d(v[0], {2, 2}); }, {x});
  expect_ok([](auto& v) { return avg_pool2d(v[0], {3, 3}, {2, 2}, {1, 1}); }, {x});
  expect_ok([](auto& v) { return avg_pool2d(v[0], {2, 3}, {1, 2}); }, {x});
  expect_ok([](auto& v) { return upsample_nearest2d(v[0], 2, 2); }, {x});
  expect_ok([](auto& v) { return upsample_nearest2d(v[0].transpose(2, 3), 2, 3); }, {x});
}

BOOST_AUTO_TEST_CASE(dropout_and_drop_path_gradients) {
  const Tensor x = leaf({4, 3, 5}, 400);
  // A fresh generator per call: every evaluation draws the same mask.
  expect_ok(
      [](auto& v) {
        Generator gen(7);
        return dropout(v[0], 0.3, true, gen);
      },
      {x});
  expect_ok(
      [](auto& v) {
        Generator gen(8);
        return drop_path(v[0], 0.5, true, gen);
      },
      {x});
}

BOOST_AUTO_TEST_CASE(empty_batch) {
  Tensor x = Tensor::zeros({0, 3, 5, 5}), w = Tensor::ones({4, 3, 3, 3}), b = Tensor::ones({4});
  x.requires_grad_(), w.requires_grad_(), b.requires_grad_();
  const Tensor y = conv2d(x, w, b, {.padding = {1, 1}});
  BOOST_TEST((y.shape() == Shape{0, 4, 5, 5}));
  sum(y).backward();
  BOOST_TEST((x.grad().shape() == Shape{0, 3, 5, 5}));
  BOOST_TEST(w.grad().to_vector<float>() == std::vector<float>(4 * 27, 0.0f));
  BOOST_TEST(b.grad().to_vector<float>() == std::vector<float>(4, 0.0f));
  Tensor xt = Tensor::zeros({0, 4, 3, 3});
  BOOST_TEST((conv_transpose2d(xt, Tensor::ones({4, 2, 4, 4}), Tensor(), {.stride = {2, 2}, .padding = {1, 1}}).shape() ==
              Shape{0, 2, 6, 6}));
  BOOST_TEST((group_norm(Tensor::zeros({0, 4, 3, 3}), 2).shape() == Shape{0, 4, 3, 3}));
}

BOOST_AUTO_TEST_CASE(bad_arguments_are_errors) {
  const Tensor x = Tensor::zeros({1, 4, 5, 5}), w = Tensor::zeros({2, 4, 3, 3});
  BOOST_CHECK_THROW(conv2d(x, Tensor::zeros({2, 3, 3, 3})), Error);                  // channel mismatch
  BOOST_CHECK_THROW(conv2d(x, w, Tensor::zeros({3})), Error);                        // bias size
  BOOST_CHECK_THROW(conv2d(x, Tensor::zeros({3, 2, 3, 3}), Tensor(), {.groups = 2}), Error);  // out % groups
  BOOST_CHECK_THROW(conv2d(x, Tensor::zeros({2, 4, 7, 7})), Error);                  // kernel larger than input
  BOOST_CHECK_THROW(conv2d(x, w, Tensor(), {.stride = {0, 1}}), Error);
  BOOST_CHECK_THROW(conv2d(Tensor::zeros({4, 5, 5}), w), Error);                      // not 4-D
  BOOST_CHECK_THROW(conv2d(x.to(DType::f64), w), Error);                              // dtype mismatch
  BOOST_CHECK_THROW(conv_transpose2d(x, Tensor::zeros({4, 2, 3, 3}), Tensor(), {.stride = {2, 2}, .output_padding = {2, 0}}),
                    Error);
  BOOST_CHECK_THROW(conv_transpose2d(x, Tensor::zeros({3, 2, 3, 3})), Error);
  BOOST_CHECK_THROW(group_norm(x, 3), Error);
  BOOST_CHECK_THROW(group_norm(x, 2, Tensor::ones({3})), Error);
  BOOST_CHECK_THROW(avg_pool2d(x, {6, 6}), Error);
  BOOST_CHECK_THROW(upsample_nearest2d(x, 0, 2), Error);
  BOOST_CHECK_THROW(dropout(x, 1.5, true), Error);
  try {
    conv2d(x, Tensor::zeros({2, 3, 3, 3}));
  } catch (const Error& e) {
    const std::string m = e.what();
    BOOST_TEST(m.find("conv2d") != std::string::npos, m);
    BOOST_TEST(m.find("[2, 3, 3, 3]") != std::string::npos, m);
  }
}

BOOST_AUTO_TEST_SUITE_END()
