// Fused kernels (bias + activation, LayerNorm with and without residual, cross-entropy with
// log-softmax, AdamW): every SIMD path against the scalar reference at the tail sizes and on
// unaligned pointers; the f64 references' backward passes against finite differences.
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <functional>
#include <stdexcept>

#include "kernels/adamw.h"
#include "kernels/adamw_ref.h"
#include "kernels/bias_act.h"
#include "kernels/bias_act_ref.h"
#include "kernels/cross_entropy.h"
#include "kernels/cross_entropy_ref.h"
#include "kernels/layer_norm.h"
#include "kernels/layer_norm_ref.h"
#include "kernels/threads.h"
#include "tests/kernels/kernel_test_util.h"

using namespace tessera::kernels;
using namespace tessera::kernels::testing;

namespace {

constexpr int64_t rows = 3;
// Row counts for the kernels that take rows in groups of 4 and sum columns in blocks of 128 rows:
// a partial group, whole groups plus a remainder, and (on narrow rows) several blocks.
std::vector<int64_t> row_counts(int64_t cols) {
  if (cols <= 33) return {3, 9, 133};
  return {3, 9};
}
// Every activation of kernels/activation.h.
const Activation all_activations[] = {
    Activation::identity,
#define TESSERA_ACTIVATION_CASE(id) Activation::id,
    TESSERA_ACTIVATIONS(TESSERA_ACTIVATION_CASE)
#undef TESSERA_ACTIVATION_CASE
};

// d(sum(w * f(x)))/dx by central differences, for checking a backward pass in f64.
std::vector<double> numeric_grad(const std::function<std::vector<double>(const std::vector<double>&)>& f,
                                 std::vector<double> x, const std::vector<double>& w) {
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double keep = x[i], h = 1e-6;
    x[i] = keep + h;
    const auto up = f(x);
    x[i] = keep - h;
    const auto down = f(x);
    x[i] = keep;
    double s = 0;
    for (size_t j = 0; j < up.size(); ++j) s += w[j] * (up[j] - down[j]);
    g[i] = s / (2 * h);
  }
  return g;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(fused_kernels)

BOOST_AUTO_TEST_CASE(bias_act_matches_reference) {
  for_each_simd_path([](SimdPath) {
    for (Activation act : all_activations)
      for (int64_t cols : tail_sizes())
        for (int64_t rows : row_counts(cols))  // shadows the file's 3 rows
        for (int64_t offset : {0, 1})
          for (bool with_bias : {true, false}) {
            const int64_t n = rows * cols;
            const auto x = random_vector(n, 50 + cols, -4, 4), dy = random_vector(n, 51 + cols);
            const auto bias = random_vector(cols, 52 + cols);
            const float* b = with_bias ? bias.data() + offset : nullptr;
            std::vector<float> y(size_t(n) + 1), want(size_t(n) + 1), dx(size_t(n) + 1), want_dx(size_t(n) + 1);
            std::vector<float> db(size_t(cols) + 1), want_db(size_t(cols) + 1);
            BOOST_TEST_CONTEXT(activation_name(act) << " rows=" << rows << " cols=" << cols << " offset=" << offset << " bias="
                                                    << with_bias) {
              bias_act_forward(act, x.data() + offset, b, rows, cols, y.data() + offset);
              ref::bias_act_forward(act, x.data() + offset, b, rows, cols, want.data());
              check_close(y.data() + offset, want.data(), n, 2e-6, 2e-6, "y");
              bias_act_backward(act, x.data() + offset, b, dy.data() + offset, rows, cols, dx.data() + offset,
                                db.data() + offset);
              ref::bias_act_backward(act, x.data() + offset, b, dy.data() + offset, rows, cols, want_dx.data(),
                                     want_db.data());
              check_close(dx.data() + offset, want_dx.data(), n, 1e-5, 2e-6, "dx");
              check_close(db.data() + offset, want_db.data(), cols, 1e-5, 1e-5, "dbias");
            }
          }
  });
}

BOOST_AUTO_TEST_CASE(bias_gradient_is_identity_backwards_dbias_bitwise) {
  // The identity Linear's backward sums dy without copying it: the same bits as the fused kernel's
  // dbias, on every path, on tails and on 1 and 2 threads (row blocks beyond one thread's share).
  const int saved = num_threads();
  for_each_simd_path([](SimdPath) {
    for (int64_t rows : {int64_t(1), int64_t(7), int64_t(300), int64_t(5000)})
      for (int64_t cols : {int64_t(1), int64_t(17), int64_t(33)}) {
        const auto dy = random_vector<float>(rows * cols, uint64_t(rows * 100 + cols));
        std::vector<float> dx(size_t(rows * cols)), want(static_cast<size_t>(cols)), got(size_t(cols), -1.0f);
        bias_act_backward(Activation::identity, dy.data(), nullptr, dy.data(), rows, cols, dx.data(), want.data());
        for (int threads : {1, 2}) {
          set_num_threads(threads);
          bias_gradient(dy.data(), rows, cols, got.data());
          BOOST_TEST(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)) == 0,
                     "rows=" << rows << " cols=" << cols << " threads=" << threads);
        }
      }
  });
  set_num_threads(saved);
}

BOOST_AUTO_TEST_CASE(bias_act_backward_matches_finite_differences) {
  const int64_t r = 2, c = 5;
  const auto x = random_vector<double>(r * c, 60, -2, 2), w = random_vector<double>(r * c, 61);
  const auto bias = random_vector<double>(c, 62);
  for (Activation act : all_activations) {
    if (act == Activation::relu) continue;  // kink at 0; covered against the reference above
    std::vector<double> dx(size_t(r * c)), db(static_cast<size_t>(c));
    ref::bias_act_backward(act, x.data(), bias.data(), w.data(), r, c, dx.data(), db.data());
    const auto num = numeric_grad(
        [&](const std::vector<double>& in) {
          std::vector<double> y(size_t(r * c));
          ref::bias_act_forward(act, in.data(), bias.data(), r, c, y.data());
          return y;
        },
        std::vector<double>(x.begin(), x.begin() + r * c), w);
    BOOST_TEST_CONTEXT(activation_name(act)) { check_close(dx.data(), num.data(), r * c, 1e-6, 1e-8, "dx"); }
  }
}

BOOST_AUTO_TEST_CASE(layer_norm_matches_reference) {
  for_each_simd_path([](SimdPath) {
    for (int64_t cols : tail_sizes()) {
      if (cols == 0) continue;  // a row of no features has no mean
      for (int64_t rows : row_counts(cols))  // shadows the file's 3 rows
      for (int64_t offset : {0, 1})
        for (bool affine : {true, false})
          for (bool residual : {false, true}) {
            // One feature: dx is 0 in exact arithmetic, but rstd = 1/sqrt(eps) ~ 316 scales the
            // rounding of g - mean(g) past the absolute tolerance on some rows (either side).
            if (cols == 1 && rows > 9) continue;
            const int64_t n = rows * cols;
            const auto x = random_vector(n, 70 + cols, -3, 5), res = random_vector(n, 71 + cols);
            const auto dy = random_vector(n, 72 + cols);
            const auto gamma = random_vector(cols, 73 + cols, 0.5, 1.5), beta = random_vector(cols, 74 + cols);
            const float* g = affine ? gamma.data() + offset : nullptr;
            const float* b = affine ? beta.data() + offset : nullptr;
            std::vector<float> y(size_t(n) + 1), want(size_t(n) + 1), sum(size_t(n) + 1), want_sum(size_t(n) + 1);
            std::vector<float> mean(rows), rstd(rows), want_mean(rows), want_rstd(rows);
            BOOST_TEST_CONTEXT("rows=" << rows << " cols=" << cols << " offset=" << offset << " affine=" << affine
                                       << " residual=" << residual) {
              const float* src = x.data() + offset;
              if (residual) {
                add_layer_norm_forward(src, res.data() + offset, g, b, rows, cols, 1e-5f, sum.data() + offset,
                                       y.data() + offset, mean.data(), rstd.data());
                ref::add_layer_norm_forward(src, res.data() + offset, g, b, rows, cols, 1e-5f, want_sum.data(),
                                            want.data(), want_mean.data(), want_rstd.data());
                check_close(sum.data() + offset, want_sum.data(), n, 0, 0, "sum");
                src = want_sum.data();
              } else {
                layer_norm_forward(src, g, b, rows, cols, 1e-5f, y.data() + offset, mean.data(), rstd.data());
                ref::layer_norm_forward(src, g, b, rows, cols, 1e-5f, want.data(), want_mean.data(),
                                        want_rstd.data());
              }
              check_close(y.data() + offset, want.data(), n, 1e-5, 1e-5, "y");
              check_close(mean.data(), want_mean.data(), rows, 1e-6, 1e-6, "mean");
              check_close(rstd.data(), want_rstd.data(), rows, 1e-5, 0, "rstd");

              std::vector<float> dx(size_t(n) + 1), want_dx(size_t(n) + 1), dg(static_cast<size_t>(cols)), want_dg(static_cast<size_t>(cols));
              std::vector<float> dbeta(static_cast<size_t>(cols)), want_dbeta(static_cast<size_t>(cols));
              layer_norm_backward(src, g, want_mean.data(), want_rstd.data(), dy.data() + offset, rows, cols,
                                  dx.data() + offset, dg.data(), dbeta.data());
              ref::layer_norm_backward(src, g, want_mean.data(), want_rstd.data(), dy.data() + offset, rows, cols,
                                       want_dx.data(), want_dg.data(), want_dbeta.data());
              check_close(dx.data() + offset, want_dx.data(), n, 1e-4, 1e-5, "dx");
              check_close(dg.data(), want_dg.data(), cols, 1e-5, 1e-5, "dgamma");
              check_close(dbeta.data(), want_dbeta.data(), cols, 1e-5, 1e-6, "dbeta");
            }
          }
    }
  });
}

BOOST_AUTO_TEST_CASE(layer_norm_backward_matches_finite_differences) {
  const int64_t r = 2, c = 6;
  const auto x = random_vector<double>(r * c, 80, -2, 2), w = random_vector<double>(r * c, 81);
  const auto gamma = random_vector<double>(c, 82, 0.5, 1.5), beta = random_vector<double>(c, 83);
  std::vector<double> y(size_t(r * c)), mean(r), rstd(r), dx(size_t(r * c)), dg(static_cast<size_t>(c)), db(static_cast<size_t>(c));
  ref::layer_norm_forward(x.data(), gamma.data(), beta.data(), r, c, 1e-5, y.data(), mean.data(), rstd.data());
  ref::layer_norm_backward(x.data(), gamma.data(), mean.data(), rstd.data(), w.data(), r, c, dx.data(), dg.data(),
                           db.data());
  auto run = [&](const std::vector<double>& xin, const std::vector<double>& gin, const std::vector<double>& bin) {
    std::vector<double> out(size_t(r * c)), m(r), s(r);
    ref::layer_norm_forward(xin.data(), gin.data(), bin.data(), r, c, 1e-5, out.data(), m.data(), s.data());
    return out;
  };
  const std::vector<double> x0(x.begin(), x.begin() + r * c), g0(gamma.begin(), gamma.begin() + c),
      b0(beta.begin(), beta.begin() + c);
  const auto num_dx = numeric_grad([&](const std::vector<double>& v) { return run(v, g0, b0); }, x0, w);
  const auto num_dg = numeric_grad([&](const std::vector<double>& v) { return run(x0, v, b0); }, g0, w);
  const auto num_db = numeric_grad([&](const std::vector<double>& v) { return run(x0, g0, v); }, b0, w);
  check_close(dx.data(), num_dx.data(), r * c, 1e-5, 1e-7, "dx");
  check_close(dg.data(), num_dg.data(), c, 1e-5, 1e-7, "dgamma");
  check_close(db.data(), num_db.data(), c, 1e-5, 1e-7, "dbeta");
}

BOOST_AUTO_TEST_CASE(cross_entropy_matches_reference) {
  for_each_simd_path([](SimdPath) {
    for (int64_t cols : tail_sizes()) {
      if (cols == 0) continue;
      for (int64_t offset : {0, 1}) {
        const int64_t n = rows * cols;
        const auto logits = random_vector(n, 90 + cols, -10, 10);
        const std::vector<int64_t> targets{cols - 1, -1, cols / 2};  // the middle row is ignored
        std::vector<float> loss(rows), want_loss(rows), d(size_t(n) + 1), want_d(size_t(n) + 1);
        BOOST_TEST_CONTEXT("cols=" << cols << " offset=" << offset) {
          cross_entropy(logits.data() + offset, targets.data(), rows, cols, 0.25f, loss.data(), d.data() + offset);
          ref::cross_entropy(logits.data() + offset, targets.data(), rows, cols, 0.25f, want_loss.data(),
                             want_d.data());
          check_close(loss.data(), want_loss.data(), rows, 1e-5, 1e-6, "loss");
          check_close(d.data() + offset, want_d.data(), n, 1e-5, 1e-8, "dlogits");
          cross_entropy(logits.data() + offset, targets.data(), rows, cols, 0.25f, loss.data(), nullptr);
          check_close(loss.data(), want_loss.data(), rows, 1e-5, 1e-6, "loss without gradient");
        }
      }
    }
  });
}

BOOST_AUTO_TEST_CASE(cross_entropy_gradient_and_bad_target) {
  const int64_t r = 2, c = 7;
  const auto logits = random_vector<double>(r * c, 95, -3, 3);
  const std::vector<int64_t> targets{3, 0};
  std::vector<double> loss(r), d(size_t(r * c));
  ref::cross_entropy(logits.data(), targets.data(), r, c, 1.0, loss.data(), d.data());
  const std::vector<double> l0(logits.begin(), logits.begin() + r * c), ones(r, 1.0);
  const auto num = numeric_grad(
      [&](const std::vector<double>& v) {
        std::vector<double> out(r);
        ref::cross_entropy(v.data(), targets.data(), r, c, 1.0, out.data(), static_cast<double*>(nullptr));
        return out;
      },
      l0, ones);
  check_close(d.data(), num.data(), r * c, 1e-6, 1e-8, "dlogits");
  const std::vector<int64_t> bad{3, 7};
  std::vector<float> f(size_t(r * c)), fl(r);
  BOOST_CHECK_THROW(cross_entropy(f.data(), bad.data(), r, c, 1.0f, fl.data(), nullptr), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(adamw_matches_reference) {
  AdamWHyper h;
  h.lr = 3e-3, h.weight_decay = 0.1, h.step = 7;
  for_each_simd_path([&](SimdPath) {
    for (int64_t n : tail_sizes())
      for (int64_t offset : {0, 1}) {
        auto p = random_vector(n, 100 + n), m = random_vector(n, 101 + n, -0.1, 0.1);
        auto v = random_vector(n, 102 + n, 0, 0.01);
        const auto g = random_vector(n, 103 + n);
        auto wp = p, wm = m, wv = v;
        adamw_update(p.data() + offset, g.data() + offset, m.data() + offset, v.data() + offset, n, h);
        ref::adamw_update(wp.data() + offset, g.data() + offset, wm.data() + offset, wv.data() + offset, n,
                          ref::AdamWStep(h));
        BOOST_TEST_CONTEXT("n=" << n << " offset=" << offset) {
          check_close(p.data(), wp.data(), n + 1, 1e-6, 1e-7, "params");
          check_close(m.data(), wm.data(), n + 1, 1e-6, 3e-8, "m");  // b1*m + (1-b1)*g cancels
          check_close(v.data(), wv.data(), n + 1, 1e-6, 1e-10, "v");
        }
      }
  });
}

BOOST_AUTO_TEST_CASE(adamw_first_step_against_hand_computation) {
  // step 1: mhat = g, vhat = g^2, so p' = p(1 - lr wd) - lr g/(|g| + eps)
  AdamWHyper h;
  h.lr = 0.1, h.weight_decay = 0.5, h.eps = 1e-8, h.step = 1;
  std::vector<double> p{1.0, -2.0}, g{0.5, -4.0}, m(2, 0.0), v(2, 0.0);
  adamw_update(p.data(), g.data(), m.data(), v.data(), 2, h);
  BOOST_TEST(p[0] == 1.0 * 0.95 - 0.1 * 0.5 / (0.5 + 1e-8), boost::test_tools::tolerance(1e-12));
  BOOST_TEST(p[1] == -2.0 * 0.95 + 0.1 * 4.0 / (4.0 + 1e-8), boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(fused_results_independent_of_thread_count) {
  const int saved = num_threads();
  const int64_t r = 700, c = 96;
  const auto x = random_vector(r * c, 110), dy = random_vector(r * c, 111);
  std::vector<float> dg1(c), dg2(c), db1(c), db2(c), mean(r), rstd(r), y(size_t(r * c)), dx(size_t(r * c));
  layer_norm_forward(x.data(), nullptr, nullptr, r, c, 1e-5f, y.data(), mean.data(), rstd.data());
  set_num_threads(1);
  layer_norm_backward(x.data(), nullptr, mean.data(), rstd.data(), dy.data(), r, c, dx.data(), dg1.data(), db1.data());
  set_num_threads(2);
  layer_norm_backward(x.data(), nullptr, mean.data(), rstd.data(), dy.data(), r, c, dx.data(), dg2.data(), db2.data());
  set_num_threads(saved);
  BOOST_TEST(dg1 == dg2);
  BOOST_TEST(db1 == db2);

  std::vector<float> dbias1(c), dbias2(c);
  set_num_threads(1);
  bias_act_backward(Activation::gelu_erf, x.data(), nullptr, dy.data(), r, c, dx.data(), dbias1.data());
  set_num_threads(2);
  bias_act_backward(Activation::gelu_erf, x.data(), nullptr, dy.data(), r, c, dx.data(), dbias2.data());
  set_num_threads(saved);
  BOOST_TEST(dbias1 == dbias2);
}

BOOST_AUTO_TEST_SUITE_END()
