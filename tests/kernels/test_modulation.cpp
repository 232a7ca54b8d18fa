// Per-sample modulation kernels (modulation.h: the modulated LayerNorm and the gated add of a DiT
// block): every SIMD path against the scalar reference on shapes that hit the vector tails, with
// unaligned pointers and absent outputs; the f64 gated add's backward against finite differences;
// the same bits on one thread and on two.
#include <boost/test/unit_test.hpp>

#include <cstring>

#include "kernels/modulation.h"
#include "kernels/modulation_ref.h"
#include "kernels/threads.h"
#include "tests/kernels/kernel_test_util.h"

using namespace tessera::kernels;
using namespace tessera::kernels::testing;

namespace {

struct Shape {
  int64_t samples, tokens, cols;
};
// One token, DiT's 49 of 192 (a whole number of vectors) and tails of both vector widths; 11
// samples so that two threads split them unevenly.
const std::vector<Shape>& shapes() {
  static const std::vector<Shape> s{{1, 1, 1}, {3, 5, 7}, {2, 3, 16}, {3, 4, 17}, {11, 6, 33}, {4, 49, 192}};
  return s;
}

std::vector<float> sized(int64_t n) { return std::vector<float>(static_cast<size_t>(n) + 1); }

}  // namespace

BOOST_AUTO_TEST_SUITE(modulation)

BOOST_AUTO_TEST_CASE(modulated_layer_norm_matches_reference) {
  for_each_simd_path([](SimdPath) {
    for (const Shape& s : shapes())
      for (int64_t offset : {0, 1})
        for (bool sums : {true, false}) {
          const int64_t n = s.samples * s.tokens * s.cols, v = s.samples * s.cols, rows = s.samples * s.tokens;
          const auto x = random_vector(n, 100 + s.cols, -3, 5), dy = random_vector(n, 101 + s.cols);
          const auto gamma = random_vector(v, 102 + s.cols, 0.5, 1.5), beta = random_vector(v, 103 + s.cols);
          const float* xs = x.data() + offset;
          auto y = sized(n), want = sized(n), mean = sized(rows), rstd = sized(rows), want_mean = sized(rows),
               want_rstd = sized(rows);
          BOOST_TEST_CONTEXT("samples=" << s.samples << " tokens=" << s.tokens << " cols=" << s.cols
                                        << " offset=" << offset << " sums=" << sums) {
            modulated_layer_norm_forward(xs, gamma.data() + offset, beta.data() + offset, s.samples, s.tokens, s.cols,
                                         1e-6f, y.data() + offset, mean.data(), rstd.data());
            ref::modulated_layer_norm_forward(xs, gamma.data() + offset, beta.data() + offset, s.samples, s.tokens,
                                              s.cols, 1e-6f, want.data(), want_mean.data(), want_rstd.data());
            check_close(y.data() + offset, want.data(), n, 1e-5, 1e-5, "y");
            check_close(mean.data(), want_mean.data(), rows, 1e-6, 1e-6, "mean");
            // One feature: the variance is 0 and rstd = 1/sqrt(eps), exactly as the reference's.
            check_close(rstd.data(), want_rstd.data(), rows, 1e-5, 0, "rstd");

            auto dx = sized(n), want_dx = sized(n), dg = sized(v), want_dg = sized(v), db = sized(v),
                 want_db = sized(v);
            modulated_layer_norm_backward(xs, gamma.data() + offset, want_mean.data(), want_rstd.data(),
                                          dy.data() + offset, s.samples, s.tokens, s.cols, dx.data() + offset,
                                          sums ? dg.data() : nullptr, sums ? db.data() : nullptr);
            ref::modulated_layer_norm_backward(xs, gamma.data() + offset, want_mean.data(), want_rstd.data(),
                                               dy.data() + offset, s.samples, s.tokens, s.cols, want_dx.data(),
                                               want_dg.data(), want_db.data());
            // dx = rstd (g - mean(g) - ...) cancels to rounding when there is one feature.
            if (s.cols > 1) check_close(dx.data() + offset, want_dx.data(), n, 1e-4, 1e-5, "dx");
            if (sums) {
              check_close(dg.data(), want_dg.data(), v, 1e-5, 1e-5, "dgamma");
              check_close(db.data(), want_db.data(), v, 1e-5, 1e-6, "dbeta");
            }
          }
        }
  });
}

BOOST_AUTO_TEST_CASE(gated_add_matches_reference) {
  for_each_simd_path([](SimdPath) {
    for (const Shape& s : shapes())
      for (int64_t offset : {0, 1})
        for (int outputs : {3, 1, 2}) {  // bits: da, dgate
          const int64_t n = s.samples * s.tokens * s.cols, v = s.samples * s.cols;
          const auto x = random_vector(n, 110 + s.cols, -3, 3), a = random_vector(n, 111 + s.cols);
          const auto gate = random_vector(v, 112 + s.cols), dy = random_vector(n, 113 + s.cols);
          auto y = sized(n), want = sized(n);
          BOOST_TEST_CONTEXT("samples=" << s.samples << " tokens=" << s.tokens << " cols=" << s.cols
                                        << " offset=" << offset << " outputs=" << outputs) {
            gated_add_forward(x.data() + offset, a.data() + offset, gate.data() + offset, s.samples, s.tokens, s.cols,
                              y.data() + offset);
            ref::gated_add_forward(x.data() + offset, a.data() + offset, gate.data() + offset, s.samples, s.tokens,
                                   s.cols, want.data());
            check_close(y.data() + offset, want.data(), n, 1e-6, 1e-6, "y");

            const bool with_da = outputs & 1, with_dgate = outputs & 2;
            auto da = sized(n), want_da = sized(n), dgate = sized(v), want_dgate = sized(v);
            gated_add_backward(a.data() + offset, gate.data() + offset, dy.data() + offset, s.samples, s.tokens,
                               s.cols, with_da ? da.data() + offset : nullptr, with_dgate ? dgate.data() : nullptr);
            ref::gated_add_backward(a.data() + offset, gate.data() + offset, dy.data() + offset, s.samples, s.tokens,
                                    s.cols, want_da.data(), want_dgate.data());
            if (with_da) check_close(da.data() + offset, want_da.data(), n, 1e-6, 1e-7, "da");
            if (with_dgate) check_close(dgate.data(), want_dgate.data(), v, 1e-5, 1e-6, "dgate");
          }
        }
  });
}

BOOST_AUTO_TEST_CASE(gated_add_backward_matches_finite_differences) {
  const int64_t samples = 2, tokens = 3, cols = 4, n = samples * tokens * cols, v = samples * cols;
  const auto x = random_vector<double>(n, 120), a = random_vector<double>(n, 121);
  const auto gate = random_vector<double>(v, 122), w = random_vector<double>(n, 123);
  std::vector<double> da(static_cast<size_t>(n)), dgate(static_cast<size_t>(v));
  ref::gated_add_backward(a.data(), gate.data(), w.data(), samples, tokens, cols, da.data(), dgate.data());
  // <w, y(a, gate)> by central differences
  auto loss = [&](const std::vector<double>& av, const std::vector<double>& gv) {
    std::vector<double> y(static_cast<size_t>(n));
    ref::gated_add_forward(x.data(), av.data(), gv.data(), samples, tokens, cols, y.data());
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += w[size_t(i)] * y[size_t(i)];
    return s;
  };
  const double h = 1e-6;
  for (int64_t i = 0; i < n; ++i) {
    auto up = a, down = a;
    up[size_t(i)] += h, down[size_t(i)] -= h;
    BOOST_TEST(std::abs((loss(up, gate) - loss(down, gate)) / (2 * h) - da[size_t(i)]) < 1e-7, "da[" << i << "]");
  }
  for (int64_t i = 0; i < v; ++i) {
    auto up = gate, down = gate;
    up[size_t(i)] += h, down[size_t(i)] -= h;
    BOOST_TEST(std::abs((loss(a, up) - loss(a, down)) / (2 * h) - dgate[size_t(i)]) < 1e-7, "dgate[" << i << "]");
  }
}

BOOST_AUTO_TEST_CASE(results_do_not_depend_on_the_thread_count) {
  const int saved = num_threads();
  const int64_t samples = 11, tokens = 49, cols = 192, n = samples * tokens * cols, v = samples * cols;
  const auto x = random_vector(n, 130), a = random_vector(n, 131), dy = random_vector(n, 132);
  const auto gamma = random_vector(v, 133, 0.5, 1.5), beta = random_vector(v, 134);
  auto run = [&](int threads) {
    set_num_threads(threads);
    std::vector<float> out;
    auto y = sized(n), mean = sized(samples * tokens), rstd = sized(samples * tokens), dx = sized(n), dg = sized(v),
         db = sized(v), da = sized(n), dgate = sized(v);
    modulated_layer_norm_forward(x.data(), gamma.data(), beta.data(), samples, tokens, cols, 1e-6f, y.data(),
                                 mean.data(), rstd.data());
    modulated_layer_norm_backward(x.data(), gamma.data(), mean.data(), rstd.data(), dy.data(), samples, tokens, cols,
                                  dx.data(), dg.data(), db.data());
    gated_add_backward(a.data(), gamma.data(), dy.data(), samples, tokens, cols, da.data(), dgate.data());
    for (const auto* part : {&y, &dx, &dg, &db, &da, &dgate}) out.insert(out.end(), part->begin(), part->end());
    return out;
  };
  const auto one = run(1), two = run(2);
  set_num_threads(saved);
  BOOST_TEST(one.size() == two.size());
  BOOST_TEST(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)) == 0, "1 and 2 threads differ");
}

BOOST_AUTO_TEST_SUITE_END()
