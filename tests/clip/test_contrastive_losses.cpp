// InfoNCE and SigLIP losses: gradient checks (f64), agreement with the same losses composed from
// Tessera's own ops, agreement with a PyTorch implementation on the same inputs
// (torch_contrastive_reference.py, run by Debian's /usr/bin/python3), closed-form values, and
// the errors bad input gets.
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "autograd/ops/contrastive.h"
#include "autograd/error.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "autograd/random.h"

using namespace tessera;
namespace fs = std::filesystem;

namespace {

Tensor leaf(const Shape& shape, uint64_t seed, DType dtype = DType::f64) {
  Generator gen(seed);
  Tensor t = randn(shape, gen, dtype);
  t.requires_grad_();
  return t;
}

Tensor scalar_leaf(double v, DType dtype = DType::f64) {
  Tensor t = Tensor::full({1}, v, dtype);
  t.requires_grad_();
  return t;
}

Tensor labels_of(const std::vector<int64_t>& v) { return Tensor::from_vector(v, {int64_t(v.size())}); }

void expect_gradcheck(const TensorFunction& f, const std::vector<Tensor>& inputs) {
  const GradcheckResult r = gradcheck(f, inputs);
  BOOST_TEST(r.ok, r.message);
}

// The same losses written with ordinary differentiable ops, as an independent check of the fused
// forward and backward.
Tensor normalize_composed(const Tensor& x) { return x / sqrt(sum(square(x), {1}, true)); }

Tensor targets_composed(int64_t n, const Tensor& labels, DType dtype) {
  std::vector<double> t(size_t(n * n), 0.0);
  const std::vector<int64_t> l = labels.defined() ? labels.to_vector<int64_t>() : std::vector<int64_t>{};
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) t[size_t(i * n + j)] = l.empty() ? double(i == j) : double(l[i] == l[j]);
  return Tensor::from_vector(t, {n, n}).to(dtype);
}

Tensor info_nce_composed(const Tensor& a, const Tensor& b, const Tensor& log_scale, const Tensor& labels) {
  const int64_t n = a.size(0);
  const Tensor logits = exp(log_scale) * matmul(normalize_composed(a), normalize_composed(b).t());
  const Tensor same = targets_composed(n, labels, a.dtype());
  const Tensor rows = same / sum(same, {1}, true), cols = same / sum(same, {0}, true);
  const Tensor li = -sum(rows * log_softmax(logits, 1)) / double(n);
  const Tensor lt = -sum(cols * log_softmax(logits, 0)) / double(n);
  return (li + lt) * 0.5;
}

Tensor sigmoid_composed(const Tensor& a, const Tensor& b, const Tensor& log_t, const Tensor& bias, const Tensor& labels) {
  const int64_t n = a.size(0);
  const Tensor logits = exp(log_t) * matmul(normalize_composed(a), normalize_composed(b).t()) + bias;
  const Tensor z = targets_composed(n, labels, a.dtype()) * 2.0 - 1.0;
  // -log sigmoid(x) = log(1 + exp(-x)); the inputs here are small, no overflow
  return sum(log(exp(-(z * logits)) + 1.0)) / double(n);
}

void expect_close(const Tensor& x, const Tensor& y, double tol, const std::string& what) {
  BOOST_TEST_REQUIRE(x.shape() == y.shape(), what << ": shapes " << x.shape_string() << " vs " << y.shape_string());
  const auto vx = x.to_vector<double>(), vy = y.to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < vx.size(); ++i)
    worst = std::max(worst, std::abs(vx[i] - vy[i]) / (tol + std::abs(vy[i])));
  BOOST_TEST(worst <= 1.0, what << ": worst |diff| / (tol + |ref|) = " << worst);
}

// ---- PyTorch reference ----
struct TorchCase {
  std::string kind;  // infonce | sigmoid
  int64_t n, d;
  double p0, p1 = 0;
  std::vector<int64_t> labels;
};

template <class T>
void write_raw(const fs::path& path, const std::vector<T>& v) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * sizeof(T)));
}

std::vector<float> read_raw(const fs::path& path, size_t count) {
  std::vector<float> v(count);
  std::ifstream f(path, std::ios::binary);
  f.read(reinterpret_cast<char*>(v.data()), std::streamsize(count * sizeof(float)));
  BOOST_TEST_REQUIRE(bool(f), "could not read " << path.string());
  return v;
}

fs::path case_dir(uint64_t seed) {
  return fs::temp_directory_path() / ("tessera_clip_ref_" + std::to_string(getpid()) + "_" + std::to_string(seed));
}

// The inputs of case `seed`, the same on both sides of the comparison.
std::pair<Tensor, Tensor> case_inputs(const TorchCase& c, uint64_t seed) {
  return {leaf({c.n, c.d}, seed, DType::f32), leaf({c.n, c.d}, seed + 1, DType::f32)};
}

void write_case(const TorchCase& c, uint64_t seed) {
  const fs::path dir = case_dir(seed);
  fs::create_directories(dir);
  const auto [a, b] = case_inputs(c, seed);
  write_raw(dir / "a.f32", a.to_vector<float>());
  write_raw(dir / "b.f32", b.to_vector<float>());
  if (!c.labels.empty()) write_raw(dir / "labels.i64", c.labels);
  std::ofstream(dir / "meta.txt") << c.kind << ' ' << c.n << ' ' << c.d << ' ' << fmt::format("{:.17g} {:.17g}", c.p0, c.p1)
                                  << ' ' << kClipMaxLogitScale << ' ' << int(!c.labels.empty()) << '\n';
}

void check_case(const TorchCase& c, uint64_t seed) {
  const fs::path dir = case_dir(seed);
  auto [a, b] = case_inputs(c, seed);
  Tensor p0 = scalar_leaf(c.p0, DType::f32), p1 = scalar_leaf(c.p1, DType::f32);
  const Tensor labels = c.labels.empty() ? Tensor() : labels_of(c.labels);
  Tensor loss = c.kind == "infonce" ? info_nce_loss(a, b, p0, {labels})
                                    : sigmoid_pairwise_loss(a, b, p0, p1, {labels});
  loss.backward();
  const std::string what = c.kind + (c.labels.empty() ? "" : " multi-positive") + " n=" + std::to_string(c.n) +
                           " p0=" + std::to_string(c.p0);
  const size_t nd = size_t(c.n * c.d);
  expect_close(loss, Tensor::from_vector(read_raw(dir / "loss.f32", 1), {}), 1e-5, what + " loss");
  // f32 on both sides, summed in different orders: agreement to a few ulps of the largest entry
  expect_close(a.grad(), Tensor::from_vector(read_raw(dir / "ga.f32", nd), {c.n, c.d}), 1e-5, what + " d/da");
  expect_close(b.grad(), Tensor::from_vector(read_raw(dir / "gb.f32", nd), {c.n, c.d}), 1e-5, what + " d/db");
  const double g0 = p0.grad().defined() ? p0.grad().item() : 0.0;
  expect_close(Tensor::scalar(g0), Tensor::scalar(read_raw(dir / "gp0.f32", 1)[0]), 1e-5, what + " d/dp0");
  if (c.kind == "sigmoid")
    expect_close(p1.grad(), Tensor::from_vector(read_raw(dir / "gp1.f32", 1), {1}), 1e-5, what + " d/dbias");
  fs::remove_all(dir);
}

std::vector<int64_t> cycling_labels(int64_t n, int64_t classes) {
  std::vector<int64_t> l(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) l[size_t(i)] = (i * 7 + i / 3) % classes;
  return l;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(contrastive_losses)

BOOST_AUTO_TEST_CASE(info_nce_gradcheck) {
  const Tensor a = leaf({6, 5}, 1), b = leaf({6, 5}, 2);
  const Tensor s = scalar_leaf(std::log(1 / 0.07));
  expect_gradcheck([](auto& x) { return info_nce_loss(x[0], x[1], x[2]); }, {a, b, s});
  const Tensor labels = labels_of({0, 1, 0, 2, 1, 0});
  expect_gradcheck([&](auto& x) { return info_nce_loss(x[0], x[1], x[2], {labels}); }, {a, b, s});
  // Above the clamp the scale is constant (gradient 0) and the embeddings still get theirs.
  const Tensor big = scalar_leaf(5.0);
  expect_gradcheck([](auto& x) { return info_nce_loss(x[0], x[1], x[2]); }, {a, b, big});
}

BOOST_AUTO_TEST_CASE(sigmoid_loss_gradcheck) {
  const Tensor a = leaf({6, 5}, 3), b = leaf({6, 5}, 4);
  const Tensor t = scalar_leaf(std::log(10.0)), bias = scalar_leaf(-10.0);
  expect_gradcheck([](auto& x) { return sigmoid_pairwise_loss(x[0], x[1], x[2], x[3]); }, {a, b, t, bias});
  const Tensor labels = labels_of({0, 1, 0, 2, 1, 0});
  const Tensor t2 = scalar_leaf(1.0), bias2 = scalar_leaf(0.5);
  expect_gradcheck([&](auto& x) { return sigmoid_pairwise_loss(x[0], x[1], x[2], x[3], {labels}); }, {a, b, t2, bias2});
}

BOOST_AUTO_TEST_CASE(l2_normalize_rows_gradcheck) {
  const Tensor x = leaf({2, 3, 4}, 5);
  expect_gradcheck([](auto& v) { return l2_normalize_rows(v[0]); }, {x});
  const Tensor y = l2_normalize_rows(x);
  const Tensor norms = sqrt(sum(square(y), {-1}));
  expect_close(norms, Tensor::ones({2, 3}, DType::f64), 1e-12, "unit rows");
}

BOOST_AUTO_TEST_CASE(fused_matches_composed_ops) {
  for (bool with_labels : {false, true}) {
    const Tensor labels = with_labels ? labels_of({3, 1, 3, 0, 1, 3, 2}) : Tensor();
    Tensor a1 = leaf({7, 4}, 6), b1 = leaf({7, 4}, 7), s1 = scalar_leaf(1.3);
    Tensor a2 = leaf({7, 4}, 6), b2 = leaf({7, 4}, 7), s2 = scalar_leaf(1.3);
    Tensor fused = info_nce_loss(a1, b1, s1, {labels}), composed = info_nce_composed(a2, b2, s2, labels);
    expect_close(fused, composed, 1e-12, "info_nce value");
    fused.backward();
    composed.backward();
    expect_close(a1.grad(), a2.grad(), 1e-10, "info_nce d/da");
    expect_close(b1.grad(), b2.grad(), 1e-10, "info_nce d/db");
    expect_close(s1.grad(), s2.grad(), 1e-10, "info_nce d/dlog_scale");

    Tensor t1 = scalar_leaf(0.7), c1 = scalar_leaf(-1.5), t2 = scalar_leaf(0.7), c2 = scalar_leaf(-1.5);
    Tensor a3 = leaf({7, 4}, 8), b3 = leaf({7, 4}, 9), a4 = leaf({7, 4}, 8), b4 = leaf({7, 4}, 9);
    Tensor sf = sigmoid_pairwise_loss(a3, b3, t1, c1, {labels}), sc = sigmoid_composed(a4, b4, t2, c2, labels);
    expect_close(sf, sc, 1e-12, "sigmoid value");
    sf.backward();
    sc.backward();
    expect_close(a3.grad(), a4.grad(), 1e-10, "sigmoid d/da");
    expect_close(b3.grad(), b4.grad(), 1e-10, "sigmoid d/db");
    expect_close(t1.grad(), t2.grad(), 1e-10, "sigmoid d/dlog_t");
    expect_close(c1.grad(), c2.grad(), 1e-10, "sigmoid d/dbias");
  }
}

BOOST_AUTO_TEST_CASE(closed_form_values) {
  // All embeddings equal: every logit is the same, so each cross-entropy is log N.
  const int64_t n = 9;
  const Tensor same = Tensor::ones({n, 3}, DType::f64);
  BOOST_TEST(info_nce_loss(same, same, Tensor::scalar(2.0, DType::f64)).item() == std::log(double(n)),
             boost::test_tools::tolerance(1e-12));
  // SigLIP with every cosine 1: N positives at t+b, N(N-1) negatives at -(t+b), divided by N.
  const double t = 10, bias = -10, l = t * 1 + bias;
  const double expected = (n * std::log1p(std::exp(-l)) + n * (n - 1) * std::log1p(std::exp(l))) / n;
  BOOST_TEST(sigmoid_pairwise_loss(same, same, Tensor::scalar(std::log(t), DType::f64), Tensor::scalar(bias, DType::f64))
                 .item() == expected,
             boost::test_tools::tolerance(1e-12));
  // Orthonormal pairs with a large scale: the loss goes to zero.
  Tensor eye = Tensor::zeros({4, 4}, DType::f64);
  for (int64_t i = 0; i < 4; ++i) eye.data<double>()[i * 5] = 1;
  BOOST_TEST(info_nce_loss(eye, eye, Tensor::scalar(std::log(100.0), DType::f64)).item() < 1e-40);
}

BOOST_AUTO_TEST_CASE(logit_scale_is_clamped_at_100) {
  const Tensor a = leaf({5, 3}, 10), b = leaf({5, 3}, 11);
  const double at_cap = info_nce_loss(a, b, Tensor::scalar(std::log(100.0), DType::f64)).item();
  const double above = info_nce_loss(a, b, Tensor::scalar(7.0, DType::f64)).item();
  BOOST_TEST(at_cap == above, boost::test_tools::tolerance(1e-14));
  Tensor s = scalar_leaf(7.0);
  info_nce_loss(a, b, s).backward();
  BOOST_TEST((!s.grad().defined() || s.grad().item() == 0.0));
  clamp_log_scale_(s);
  BOOST_TEST(s.item() == std::log(100.0), boost::test_tools::tolerance(1e-15));
  Tensor neg = Tensor::scalar(-3.0);
  clamp_log_scale_(neg);
  BOOST_TEST(neg.item() == 0.0);
}

BOOST_AUTO_TEST_CASE(agrees_with_pytorch) {
  const std::vector<TorchCase> cases{
      {"infonce", 32, 16, std::log(1 / 0.07), 0, {}},
      {"infonce", 32, 16, std::log(1 / 0.07), 0, cycling_labels(32, 5)},
      {"infonce", 17, 8, 5.0, 0, {}},  // above the clamp
      {"sigmoid", 32, 16, std::log(10.0), -10.0, {}},
      {"sigmoid", 32, 16, 0.5, 1.0, cycling_labels(32, 4)},
      {"infonce", 256, 128, std::log(1 / 0.07), 0, cycling_labels(256, 10)},
      {"sigmoid", 256, 128, std::log(10.0), -10.0, {}},
  };
  std::string cmd = "/usr/bin/python3 " TESSERA_SOURCE_DIR "/tests/clip/torch_contrastive_reference.py";
  for (size_t i = 0; i < cases.size(); ++i) {
    write_case(cases[i], 100 + 10 * i);
    cmd += " " + case_dir(100 + 10 * i).string();
  }
  BOOST_TEST_REQUIRE(std::system(cmd.c_str()) == 0, "reference script failed: " << cmd);
  for (size_t i = 0; i < cases.size(); ++i) check_case(cases[i], 100 + 10 * i);
}

BOOST_AUTO_TEST_CASE(bad_input_is_refused_with_a_message) {
  const Tensor a = leaf({4, 3}, 12, DType::f32), b = leaf({4, 3}, 13, DType::f32), c = leaf({5, 3}, 14, DType::f32);
  const Tensor s = Tensor::scalar(1.0), s64 = Tensor::scalar(1.0, DType::f64), two = Tensor::zeros({2});
  auto message = [](auto&& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  BOOST_TEST(message([&] { info_nce_loss(a, c, s); }).find("[4, 3] and [5, 3]") != std::string::npos,
             message([&] { info_nce_loss(a, c, s); }));
  BOOST_TEST(message([&] { info_nce_loss(a, b, two); }).find("log_scale must hold one element") != std::string::npos);
  BOOST_TEST(message([&] { info_nce_loss(a, b, s64); }).find("log_scale is f64") != std::string::npos);
  BOOST_TEST(message([&] { info_nce_loss(a, b, s, {labels_of({0, 1, 2})}); }).find("labels must be [4]") !=
             std::string::npos);
  BOOST_TEST(message([&] { info_nce_loss(a, b, s, {Tensor::zeros({4})}); }).find("labels must be integers") !=
             std::string::npos);
  BOOST_TEST(message([&] { sigmoid_pairwise_loss(a, b, s, two); }).find("bias must hold one element") !=
             std::string::npos);
  BOOST_TEST(message([&] { info_nce_loss(a.slice(0, 0, 0), b.slice(0, 0, 0), s); }).find("empty batch") !=
             std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
