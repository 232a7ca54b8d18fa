// Quantizer ops and modules: nearest-code search against brute force, the straight-through
// gradients, gradient checks of the VQ losses, k-means, dead-code restarts, EMA updates and FSQ.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>
#include <set>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "autograd/ops/quantize.h"
#include "autograd/random.h"
#include "nn/fsq.h"
#include "nn/quantizer.h"

using namespace tessera;

namespace {
Tensor leaf(const Shape& shape, uint64_t seed, DType dtype = DType::f64, double low = -1, double high = 1) {
  Generator gen(seed);
  Tensor t = uniform(shape, low, high, gen, dtype);
  t.requires_grad_();
  return t;
}

// The nearest row by direct distances, first index on ties.
std::vector<int64_t> brute_force_nearest(const Tensor& z, const Tensor& e, std::vector<double>* best_dist = nullptr) {
  const auto zv = z.to_vector<double>(), ev = e.to_vector<double>();
  const int64_t m = z.size(0), k = e.size(0), d = z.size(1);
  std::vector<int64_t> out(m);
  for (int64_t i = 0; i < m; ++i) {
    double best = std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < k; ++j) {
      double s = 0;
      for (int64_t c = 0; c < d; ++c) s += (zv[i * d + c] - ev[j * d + c]) * (zv[i * d + c] - ev[j * d + c]);
      if (s < best) best = s, out[i] = j;
    }
    if (best_dist) best_dist->push_back(best);
  }
  return out;
}

// Distance from z row i to its chosen code minus the best distance: 0 when the choice is optimal.
double worst_regret(const Tensor& z, const Tensor& e, const std::vector<int64_t>& chosen) {
  std::vector<double> best;
  brute_force_nearest(z, e, &best);
  const auto zv = z.to_vector<double>(), ev = e.to_vector<double>();
  const int64_t d = z.size(1);
  double worst = 0;
  for (size_t i = 0; i < chosen.size(); ++i) {
    double s = 0;
    for (int64_t c = 0; c < d; ++c) s += std::pow(zv[i * d + c] - ev[chosen[i] * d + c], 2);
    worst = std::max(worst, s - best[i]);
  }
  return worst;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(quantize_ops)

BOOST_AUTO_TEST_CASE(nearest_code_matches_brute_force) {
  // 3000 rows cross the 2048-row GEMM block; f64 must agree exactly, f32 up to rounding.
  for (int64_t m : {0, 1, 7, 3000}) {
    Generator gen(uint64_t(m) + 1);
    const Tensor z = normal({m, 9}, 0, 1, gen, DType::f64), e = normal({37, 9}, 0, 1, gen, DType::f64);
    Tensor dist;
    const auto chosen = nearest_code(z, e, &dist).to_vector<int64_t>();
    std::vector<double> best;
    BOOST_TEST(chosen == brute_force_nearest(z, e, &best));
    const auto dv = dist.to_vector<double>();
    for (int64_t i = 0; i < m; ++i) BOOST_TEST(std::abs(dv[i] - best[i]) < 1e-9);
    const auto chosen32 = nearest_code(z.to(DType::f32), e.to(DType::f32)).to_vector<int64_t>();
    BOOST_TEST(worst_regret(z, e, chosen32) < 1e-4);
  }
}

BOOST_AUTO_TEST_CASE(nearest_code_breaks_ties_to_the_lowest_index) {
  const Tensor e = Tensor::from_vector<float>({1, 0, 5, 5, 1, 0}, {3, 2});  // rows 0 and 2 equal
  const Tensor z = Tensor::from_vector<float>({0.9f, 0.1f, 5, 4}, {2, 2});
  BOOST_TEST(nearest_code(z, e).to_vector<int64_t>() == (std::vector<int64_t>{0, 1}));
}

BOOST_AUTO_TEST_CASE(nearest_code_rejects_bad_shapes) {
  BOOST_CHECK_THROW(nearest_code(Tensor::zeros({4, 3}), Tensor::zeros({5, 2})), Error);
  BOOST_CHECK_THROW(nearest_code(Tensor::zeros({4, 3}), Tensor::zeros({0, 3})), Error);
  BOOST_CHECK_THROW(nearest_code(Tensor::zeros({4, 3}), Tensor::zeros({5, 3}, DType::f64)), Error);
}

BOOST_AUTO_TEST_CASE(lookup_codes_gradient) {
  const Tensor book = leaf({6, 4}, 3);
  const Tensor idx = Tensor::from_vector<int64_t>({5, 0, 5, 2, 2, 2}, {2, 3});  // repeats must add up
  const GradcheckResult r = gradcheck([&](auto& x) { return lookup_codes(x[0], idx); }, {book});
  BOOST_TEST(r.ok, r.message);
  const Tensor out = lookup_codes(book, idx);
  BOOST_TEST(out.shape() == (Shape{2, 3, 4}));
  BOOST_TEST(out.at({1, 2, 3}) == book.at({2, 3}));
}

BOOST_AUTO_TEST_CASE(lookup_codes_rejects_indices_outside_the_codebook) {
  const Tensor book = Tensor::zeros({6, 4});
  BOOST_CHECK_THROW(lookup_codes(book, Tensor::from_vector<int64_t>({0, 6}, {2})), Error);
  BOOST_CHECK_THROW(lookup_codes(book, Tensor::from_vector<int32_t>({-1}, {1})), Error);
  BOOST_CHECK_THROW(lookup_codes(book, Tensor::zeros({2})), Error);  // float indices
}

BOOST_AUTO_TEST_CASE(straight_through_passes_the_gradient_to_x_only) {
  const Tensor x = leaf({3, 4}, 4), value = leaf({3, 4}, 5), v = leaf({3, 4}, 6).detach();
  const Tensor out = straight_through(x, value);
  BOOST_TEST(allclose(out, value.detach(), 0, 0));
  sum(out * v).backward();
  BOOST_TEST(allclose(x.grad(), v, 0, 0));
  BOOST_TEST(!value.grad().defined());
  BOOST_CHECK_THROW(straight_through(x, leaf({4, 3}, 1)), Error);
}

BOOST_AUTO_TEST_CASE(round_ste_rounds_halves_to_even_with_identity_gradient) {
  Tensor x = Tensor::from_vector<double>({-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49, -0.51}, {8});
  x.requires_grad_();
  const Tensor y = round_ste(x);
  BOOST_TEST(y.to_vector<double>() == (std::vector<double>{-2, -2, -0, 0, 2, 2, 0, -1}));
  const Tensor v = Tensor::arange(8, DType::f64);
  sum(y * v).backward();
  BOOST_TEST(allclose(x.grad(), v, 0, 0));
}

BOOST_AUTO_TEST_CASE(code_counts_counts_and_checks) {
  const auto counts = code_counts(Tensor::from_vector<int32_t>({1, 1, 3}, {3}), 4);
  BOOST_TEST(counts == (std::vector<int64_t>{0, 2, 0, 1}));
  BOOST_CHECK_THROW(code_counts(Tensor::from_vector<int32_t>({4}, {1}), 4), Error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(vector_quantizer)

BOOST_AUTO_TEST_CASE(vq_losses_gradcheck) {
  // For fixed code choices the losses are smooth in z and the codebook: finite differences apply.
  Tensor z = leaf({10, 3}, 7), book = leaf({4, 3}, 8);
  // Each loss is checked in the argument it trains: finite differences cannot see stop-gradients.
  const Tensor idx = nearest_code(z.detach(), book.detach());
  GradcheckResult r = gradcheck([&](auto& x) { return nn::vq_terms(x[0], book.detach(), idx).commitment_loss; }, {z});
  BOOST_TEST(r.ok, r.message);
  r = gradcheck([&](auto& x) { return nn::vq_terms(z.detach(), x[0], idx).codebook_loss; }, {book});
  BOOST_TEST(r.ok, r.message);
  // and together, each argument gets only its own loss's gradient
  z.zero_grad(), book.zero_grad();
  const nn::VqTerms t = nn::vq_terms(z, book, idx);
  (t.codebook_loss + t.commitment_loss * 0.25).backward();
  const Tensor picked = lookup_codes(book.detach(), idx);
  BOOST_TEST(allclose(z.grad(), (z.detach() - picked) * (0.25 * 2 / 30.0), 1e-12, 1e-15));
  const GradcheckResult rn = gradcheck([](auto& x) { return nn::l2_normalize_rows(x[0]); }, {z});
  BOOST_TEST(rn.ok, rn.message);
}

BOOST_AUTO_TEST_CASE(vq_straight_through_path) {
  // d/dz sum(v * quantized) is v exactly (the estimator), and the codebook gets nothing from it.
  const Tensor z = leaf({10, 3}, 9), book = leaf({4, 3}, 10), v = leaf({10, 3}, 11).detach();
  const nn::VqTerms t = nn::vq_terms(z, book, nearest_code(z.detach(), book.detach()));
  sum(t.quantized * v).backward();
  BOOST_TEST(allclose(z.grad(), v, 0, 0));
  BOOST_TEST(!book.grad().defined());
}

BOOST_AUTO_TEST_CASE(module_forward_picks_nearest_codes_and_reports_the_loss) {
  Generator gen(1);
  nn::VectorQuantizerOptions o;
  o.codebook_size = 16, o.dim = 4, o.kmeans_init = false;
  nn::VectorQuantizer vq(o, gen);
  vq.eval();
  const Tensor z = normal({2, 3, 5, 4}, 0, 0.05, gen);
  const nn::Quantized q = vq.forward(z);
  BOOST_TEST(q.indices.shape() == (Shape{2, 3, 5}));
  BOOST_TEST(q.quantized.shape() == z.shape());
  const auto idx = q.indices.to_vector<int64_t>();
  BOOST_TEST(idx == brute_force_nearest(z.reshape({-1, 4}), vq.codebook.detach()));
  BOOST_TEST(allclose(q.quantized.detach(), vq.indices_to_codes(q.indices)));
  BOOST_TEST(vq.codes_to_indices(z).to_vector<int64_t>() == idx);
  // codebook loss + 0.25 commitment: both are the mean squared distance to the chosen code
  const double mse = mean(square(z - q.quantized.detach())).item();
  BOOST_TEST(std::abs(q.loss.item() - 1.25 * mse) < 1e-6 * std::max(1.0, mse));
  BOOST_CHECK_THROW(vq.forward(Tensor::zeros({2, 5})), Error);
  BOOST_CHECK_THROW(vq.indices_to_codes(Tensor::from_vector<int64_t>({16}, {1})), Error);
}

BOOST_AUTO_TEST_CASE(kmeans_finds_separated_clusters) {
  // Four tight clusters far apart: every centre must land in a different one.
  Generator gen(2);
  const std::vector<float> centres{10, 0, -10, 0, 0, 10, 0, -10};
  std::vector<float> rows;
  for (int i = 0; i < 400; ++i) {
    const int c = i % 4;
    rows.push_back(centres[2 * c] + 0.1f * float((i * 7) % 11 - 5) / 5);
    rows.push_back(centres[2 * c + 1] + 0.1f * float((i * 13) % 11 - 5) / 5);
  }
  const Tensor x = Tensor::from_vector(rows, {400, 2});
  const Tensor found = nn::kmeans(x, 4, 5, gen);
  const auto owner = nearest_code(found, Tensor::from_vector(centres, {4, 2})).to_vector<int64_t>();
  BOOST_TEST(std::set<int64_t>(owner.begin(), owner.end()).size() == 4u);
  Tensor dist;
  nearest_code(found, Tensor::from_vector(centres, {4, 2}), &dist);
  for (double d : dist.to_vector<double>()) BOOST_TEST(d < 0.05);
  // fewer rows than centres: copies, still all finite
  const Tensor few = nn::kmeans(x.slice(0, 0, 3), 8, 2, gen);
  for (float v : few.to_vector<float>()) BOOST_TEST(std::isfinite(v));
}

BOOST_AUTO_TEST_CASE(first_training_batch_initialises_the_codebook) {
  Generator gen(3);
  nn::VectorQuantizerOptions o;
  o.codebook_size = 8, o.dim = 2;
  nn::VectorQuantizer vq(o, gen);
  const Tensor z = normal({64, 2}, 5, 1, gen);  // far from the initial U(-1/8, 1/8) codes
  vq.forward(z, gen);
  // every code is now near the data, and a second call does not re-initialise
  for (double d : [&] { Tensor dist; nearest_code(vq.codebook.detach(), z, &dist); return dist.to_vector<double>(); }())
    BOOST_TEST(d < 4.0);
  const Tensor before = vq.codebook.detach().clone();
  vq.forward(normal({64, 2}, -5, 1, gen), gen);
  BOOST_TEST(allclose(vq.codebook.detach(), before, 0, 0));
}

BOOST_AUTO_TEST_CASE(dead_codes_restart_from_encoder_outputs) {
  Generator gen(4);
  nn::VectorQuantizerOptions o;
  o.codebook_size = 6, o.dim = 2, o.kmeans_init = false, o.dead_code_steps = 2;
  nn::VectorQuantizer vq(o, gen);
  // All inputs sit at one point: one code is picked, the others idle.
  const Tensor z = Tensor::full({5, 2}, 3.0);
  vq.forward(z, gen);
  vq.forward(z, gen);
  BOOST_TEST(vq.restarts() == 0);
  vq.forward(z, gen);  // five codes idle for 2 steps: restarted onto the data before quantizing
  BOOST_TEST(vq.restarts() == 5);
  // the five idle codes now sit on the data; the one in use stayed where it was
  const auto book = vq.codebook.detach().to_vector<float>();
  int on_data = 0;
  for (int k = 0; k < 6; ++k) on_data += book[2 * k] == 3.0f && book[2 * k + 1] == 3.0f;
  BOOST_TEST(on_data == 5);
}

BOOST_AUTO_TEST_CASE(ema_updates_move_codes_to_their_cluster_means) {
  Generator gen(5);
  nn::VectorQuantizerOptions o;
  o.codebook_size = 2, o.dim = 1, o.kmeans_init = false, o.ema = true, o.decay = 0.5;
  nn::VectorQuantizer vq(o, gen);
  BOOST_TEST(vq.parameters().empty());
  const Tensor z = Tensor::from_vector<float>({2, 2, 2, 2}, {4, 1});
  for (int i = 0; i < 30; ++i) vq.forward(z, gen);
  // the picked code converges to the mean, 2; the loss is commitment only
  const auto book = vq.codebook.to_vector<float>();
  BOOST_TEST(std::min(std::abs(book[0] - 2.0f), std::abs(book[1] - 2.0f)) < 1e-3);
  const nn::Quantized q = vq.forward(z, gen);
  BOOST_TEST(q.loss.item() < 1e-6);
}

BOOST_AUTO_TEST_CASE(l2_normalised_codes_are_unit_length) {
  Generator gen(6);
  nn::VectorQuantizerOptions o;
  o.codebook_size = 8, o.dim = 3, o.l2_normalize = true;
  nn::VectorQuantizer vq(o, gen);
  const nn::Quantized q = vq.forward(normal({20, 3}, 0, 2, gen), gen);
  const auto v = q.quantized.detach().to_vector<float>();
  for (int i = 0; i < 20; ++i) BOOST_TEST(std::abs(v[3 * i] * v[3 * i] + v[3 * i + 1] * v[3 * i + 1] + v[3 * i + 2] * v[3 * i + 2] - 1) < 1e-5);
}

BOOST_AUTO_TEST_CASE(usage_and_perplexity) {
  BOOST_TEST(nn::codebook_usage({3, 0, 1, 0}) == 0.5);
  BOOST_TEST(std::abs(nn::codebook_perplexity({5, 5, 5, 5}) - 4) < 1e-12);
  BOOST_TEST(std::abs(nn::codebook_perplexity({7, 0, 0, 0}) - 1) < 1e-12);
  BOOST_TEST(nn::codebook_perplexity({0, 0}) == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(fsq)

BOOST_AUTO_TEST_CASE(index_round_trip_covers_the_whole_codebook) {
  const nn::FiniteScalarQuantizer q({8, 5, 5, 5});
  BOOST_TEST(q.codebook_size() == 1000);
  const Tensor idx = Tensor::arange(1000, DType::i64);
  const Tensor codes = q.indices_to_codes(idx);
  BOOST_TEST(codes.shape() == (Shape{1000, 4}));
  BOOST_TEST(q.codes_to_indices(codes).to_vector<int64_t>() == idx.to_vector<int64_t>());
  // channel 0 is the least significant digit
  BOOST_TEST(q.indices_to_codes(Tensor::from_vector<int64_t>({1}, {1})).to_vector<float>() ==
             (std::vector<float>{-0.75f, -1, -1, -1}));
  BOOST_CHECK_THROW(q.indices_to_codes(Tensor::from_vector<int64_t>({1000}, {1})), Error);
  BOOST_CHECK_THROW(q.codes_to_indices(Tensor::full({1, 4}, 0.3)), Error);
}

BOOST_AUTO_TEST_CASE(every_level_is_reachable_and_no_more) {
  // A sweep over a wide range of z must hit exactly L levels per channel, odd and even L alike.
  const nn::FiniteScalarQuantizer q({8, 5, 4, 3});
  const int64_t n = 2001;
  std::vector<float> sweep;
  for (int64_t i = 0; i < n; ++i)
    for (int c = 0; c < 4; ++c) sweep.push_back(-10.0f + 20.0f * float(i) / float(n - 1));
  const Tensor codes = q.forward(Tensor::from_vector(sweep, {n, 4}));
  const auto v = codes.to_vector<float>();
  for (int c = 0; c < 4; ++c) {
    std::set<float> seen;
    for (int64_t i = 0; i < n; ++i) seen.insert(v[i * 4 + c]);
    BOOST_TEST(int64_t(seen.size()) == q.levels()[c]);
  }
  const auto zero = q.forward(Tensor::zeros({1, 4})).to_vector<float>();
  for (float x : zero) BOOST_TEST(x == 0.0f);
  const Tensor idx = q.codes_to_indices(codes);
  BOOST_TEST(allclose(q.indices_to_codes(idx), codes, 0, 0));
}

BOOST_AUTO_TEST_CASE(straight_through_gradient_is_the_bounds_gradient) {
  const nn::FiniteScalarQuantizer q({8, 5, 5});
  Tensor z = leaf({6, 3}, 12, DType::f64, -2, 2);
  const Tensor v = leaf({6, 3}, 13).detach();
  const GradcheckResult r = gradcheck([&](auto& x) { return q.bound(x[0]); }, {z});
  BOOST_TEST(r.ok, r.message);
  z.zero_grad();
  sum(q.forward(z) * v).backward();
  const Tensor through_rounding = z.grad().clone();
  z.zero_grad();
  const Tensor half_width = Tensor::from_vector<double>({4, 2, 2}, {3});
  sum(q.bound(z) / half_width * v).backward();
  BOOST_TEST(allclose(through_rounding, z.grad(), 1e-12, 1e-15));
  BOOST_CHECK_THROW(q.forward(Tensor::zeros({2, 4})), Error);
  BOOST_CHECK_THROW(nn::FiniteScalarQuantizer({8, 1}), Error);
}

BOOST_AUTO_TEST_SUITE_END()
