// A gradient check for every op in autograd/ops.h: random shapes, broadcasting, and inputs that
// are contiguous, transposed or sliced (strided) views. f64 with gradcheck's default tolerances
// (eps 1e-6, atol 1e-6, rtol 1e-4; see autograd/gradcheck.h), then a subset in f32 at the end.
#include <boost/test/unit_test.hpp>

#include "autograd/error.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "autograd/random.h"

using namespace tessera;

namespace {

enum class Layout { contiguous, transposed, sliced };
constexpr Layout kLayouts[] = {Layout::contiguous, Layout::transposed, Layout::sliced};

// A leaf of `shape` with values in [low, high), laid out as asked: `transposed` stores the last
// two dims swapped, `sliced` takes every second element of a wider last dim. Either way the
// leaf itself is non-contiguous, so the op sees strides it has to honour.
Tensor input(const Shape& shape, uint64_t seed, Layout layout = Layout::contiguous, double low = -1, double high = 1,
             DType dtype = DType::f64) {
  Generator gen(seed);
  Tensor t;
  if (layout == Layout::transposed && shape.size() >= 2) {
    Shape stored = shape;
    std::swap(stored[stored.size() - 1], stored[stored.size() - 2]);
    t = uniform(stored, low, high, gen, dtype).transpose(-1, -2).detach();
  } else if (layout == Layout::sliced && !shape.empty()) {
    Shape stored = shape;
    stored.back() = 2 * shape.back() + 1;
    t = uniform(stored, low, high, gen, dtype).slice(-1, 1, stored.back(), 2).detach();
  } else {
    t = uniform(shape, low, high, gen, dtype);
  }
  t.requires_grad_();
  return t;
}

// Values whose magnitude lies in [low, high) with a random sign: keeps abs/relu/clamp inputs
// away from their kinks.
Tensor away_from_zero(const Shape& shape, uint64_t seed, Layout layout, double low, double high) {
  Tensor magnitude = input(shape, seed, layout, low, high);
  Generator gen(seed + 1000);
  const Tensor sign = greater(rand(shape, gen, DType::f64), Tensor::scalar(0.5, DType::f64));
  NoGradGuard no_grad;
  magnitude.copy_(where(sign, magnitude, neg(magnitude)));
  return magnitude;
}

// A shape of `rank` dims with sizes in [1, 4], from a seed.
Shape random_shape(int64_t rank, uint64_t seed) {
  Generator gen(seed);
  return randint(1, 5, {rank}, gen).to_vector<int64_t>();
}

void check(const TensorFunction& f, const std::vector<Tensor>& inputs, const std::string& what,
           const GradcheckOptions& options = {}) {
  const GradcheckResult r = gradcheck(f, inputs, options);
  BOOST_TEST(r.ok, what << ": " << r.message);
}

std::string describe(const std::vector<Tensor>& xs) {
  std::string s;
  for (const Tensor& x : xs) s += x.shape_string() + (x.is_contiguous() ? " " : " (strided) ");
  return s;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(gradcheck_ops)

// ---- elementwise binary, with broadcasting ----

BOOST_AUTO_TEST_CASE(add_sub_mul_div_broadcast) {
  // [a shape, b shape]: same shape, a row, a column, a scalar, and rank promotion.
  const std::vector<std::pair<Shape, Shape>> pairs = {
      {{3, 4}, {3, 4}}, {{3, 4}, {1, 4}}, {{3, 4}, {3, 1}}, {{2, 3, 4}, {4}}, {{3, 1}, {1, 4}}, {{2, 3}, {}},
      {random_shape(3, 11), {1}}};
  uint64_t seed = 100;
  for (const auto& [sa, sb] : pairs)
    for (Layout la : kLayouts) {
      const Tensor a = input(sa, seed++, la), b = input(sb, seed++, Layout::contiguous, 0.5, 1.5);
      const std::string what = describe({a, b});
      check([](auto& x) { return add(x[0], x[1]); }, {a, b}, "add " + what);
      check([](auto& x) { return sub(x[0], x[1]); }, {a, b}, "sub " + what);
      check([](auto& x) { return mul(x[0], x[1]); }, {a, b}, "mul " + what);
      check([](auto& x) { return div(x[0], x[1]); }, {a, b}, "div " + what);
      // and with the operands swapped (b broadcast on the left), b strided
      const Tensor bs = input(sb, seed++, Layout::sliced, 0.5, 1.5);
      check([](auto& x) { return div(x[1], x[0]); }, {input(sa, seed++, la, 0.5, 1.5), bs}, "rdiv-broadcast " + what);
    }
}

BOOST_AUTO_TEST_CASE(maximum_minimum) {
  for (Layout la : kLayouts) {
    const Tensor a = input({3, 4}, 200, la), b = input({1, 4}, 201);
    check([](auto& x) { return maximum(x[0], x[1]); }, {a, b}, "maximum " + describe({a, b}));
    check([](auto& x) { return minimum(x[0], x[1]); }, {a, b}, "minimum " + describe({a, b}));
  }
}

BOOST_AUTO_TEST_CASE(scalar_operands) {
  for (Layout la : kLayouts) {
    const Tensor a = input({3, 5}, 210, la, 0.5, 2);
    check([](auto& x) { return x[0] + 2.5; }, {a}, "add scalar");
    check([](auto& x) { return x[0] * -1.5; }, {a}, "mul scalar");
    check([](auto& x) { return 3.0 - x[0]; }, {a}, "rsub");
    check([](auto& x) { return 2.0 / x[0]; }, {a}, "rdiv");
    check([](auto& x) { return x[0] / 4.0; }, {a}, "div by scalar");
  }
}

// ---- elementwise unary ----

BOOST_AUTO_TEST_CASE(smooth_unary) {
  uint64_t seed = 300;
  for (Layout la : kLayouts) {
    const Shape shape = random_shape(3, seed);
    const Tensor x = input(shape, seed++, la, -2, 2);
    const Tensor pos = input(shape, seed++, la, 0.5, 2);
    const std::string what = describe({x});
    check([](auto& v) { return neg(v[0]); }, {x}, "neg " + what);
    check([](auto& v) { return exp(v[0]); }, {x}, "exp " + what);
    check([](auto& v) { return log(v[0]); }, {pos}, "log " + what);
    check([](auto& v) { return sqrt(v[0]); }, {pos}, "sqrt " + what);
    check([](auto& v) { return rsqrt(v[0]); }, {pos}, "rsqrt " + what);
    check([](auto& v) { return square(v[0]); }, {x}, "square " + what);
    check([](auto& v) { return pow(v[0], 3.0); }, {x}, "pow 3 " + what);
    check([](auto& v) { return pow(v[0], 2.0); }, {x}, "pow 2 " + what);
    check([](auto& v) { return pow(v[0], -1.5); }, {pos}, "pow -1.5 " + what);
    check([](auto& v) { return pow(v[0], 0.5); }, {pos}, "pow 0.5 " + what);
    check([](auto& v) { return tanh(v[0]); }, {x}, "tanh " + what);
    check([](auto& v) { return sigmoid(v[0]); }, {x}, "sigmoid " + what);
    check([](auto& v) { return silu(v[0]); }, {x}, "silu " + what);
    check([](auto& v) { return gelu(v[0]); }, {x}, "gelu erf " + what);
    check([](auto& v) { return gelu(v[0], GeluApproximation::tanh); }, {x}, "gelu tanh " + what);
  }
}

// The activation vocabulary (kernels/activation.h): every name reads back to its activation, the
// names recipes use give exactly the numbers of the ops they always meant, and activate() has
// the gradient of its op.
BOOST_AUTO_TEST_CASE(activation_vocabulary) {
  const Tensor x = input({3, 5}, 450, Layout::contiguous, -3, 3);
  const auto same = [](const Tensor& a, const Tensor& b) { return a.to_vector<double>() == b.to_vector<double>(); };
  const std::pair<const char*, Tensor> named[] = {
      {"identity", x}, {"relu", relu(x)}, {"gelu", gelu(x)}, {"gelu_tanh", gelu(x, GeluApproximation::tanh)},
      {"silu", silu(x)}, {"tanh", tanh(x)}};
  for (const auto& [name, want] : named) {
    const auto act = kernels::activation_from_name(name);
    BOOST_TEST_REQUIRE(act.has_value(), name << " is not a known activation");
    BOOST_TEST(kernels::activation_name(*act) == std::string(name));
    BOOST_TEST(kernels::activation_names().find(name) != std::string::npos);
    BOOST_TEST(same(activate(x, *act), want), name << ": activate differs from the op of that name");
    if (*act != Activation::relu) check([a = *act](auto& v) { return activate(v[0], a); }, {x}, name);
  }
  BOOST_TEST(!kernels::activation_from_name("swish").has_value());
  BOOST_TEST(!kernels::activation_from_name("gelu_erf").has_value());  // recipes say "gelu"
}

BOOST_AUTO_TEST_CASE(unary_with_kinks) {
  // abs and relu have a kink at 0, clamp at its bounds: inputs stay at least 0.05 away, far more
  // than eps = 1e-6, so the finite difference never straddles one.
  uint64_t seed = 400;
  for (Layout la : kLayouts) {
    const Tensor x = away_from_zero({4, 5}, seed++, la, 0.05, 2);
    const std::string what = describe({x});
    check([](auto& v) { return abs(v[0]); }, {x}, "abs " + what);
    check([](auto& v) { return relu(v[0]); }, {x}, "relu " + what);
    // bounds at +-1.3 with |x| in [0.05, 1.25) u [1.35, 2)
    Tensor c = away_from_zero({4, 5}, seed++, la, 0.05, 2);
    {
      NoGradGuard no_grad;
      const Tensor near = greater(Tensor::scalar(0.05, DType::f64), abs(sub(abs(c), Tensor::scalar(1.3, DType::f64))));
      c.copy_(masked_fill(c, near, 0.7));
    }
    check([](auto& v) { return clamp(v[0], -1.3, 1.3); }, {c}, "clamp " + what);
  }
}

// ---- reductions ----

BOOST_AUTO_TEST_CASE(sum_mean_over_dims) {
  uint64_t seed = 500;
  const std::vector<std::vector<int64_t>> dim_sets = {{}, {0}, {1}, {-1}, {0, 2}, {1, 2}};
  for (Layout la : kLayouts)
    for (const auto& dims : dim_sets)
      for (bool keepdim : {false, true}) {
        const Tensor x = input(random_shape(3, seed), seed, la);
        ++seed;
        const std::string what = describe({x}) + fmt::format("dims [{}] keepdim {}", fmt::join(dims, ","), keepdim);
        check([&](auto& v) { return sum(v[0], dims, keepdim); }, {x}, "sum " + what);
        check([&](auto& v) { return mean(v[0], dims, keepdim); }, {x}, "mean " + what);
      }
}

BOOST_AUTO_TEST_CASE(var_with_corrections) {
  uint64_t seed = 600;
  for (Layout la : kLayouts)
    for (const std::vector<int64_t>& dims : std::vector<std::vector<int64_t>>{{}, {1}, {0, 2}, {-1}})
      for (int64_t correction : {0, 1})
        for (bool keepdim : {false, true}) {
          const Tensor x = input({3, 4, 5}, seed++, la);
          check([&](auto& v) { return var(v[0], dims, correction, keepdim); }, {x},
                fmt::format("var {} dims [{}] correction {} keepdim {}", describe({x}), fmt::join(dims, ","), correction,
                            keepdim));
        }
}

BOOST_AUTO_TEST_CASE(max_over_dims) {
  // uniform values: ties (the kink of max) have probability zero, and the gap between the two
  // largest entries is far above eps.
  uint64_t seed = 700;
  for (Layout la : kLayouts)
    for (const std::vector<int64_t>& dims : std::vector<std::vector<int64_t>>{{}, {0}, {1}, {2}, {0, 2}})
      for (bool keepdim : {false, true}) {
        const Tensor x = input({3, 4, 5}, seed++, la);
        check([&](auto& v) { return max(v[0], dims, keepdim); }, {x},
              fmt::format("max {} dims [{}] keepdim {}", describe({x}), fmt::join(dims, ","), keepdim));
      }
}

BOOST_AUTO_TEST_CASE(sum_to_shape) {
  const Tensor x = input({2, 3, 4}, 750, Layout::sliced);
  check([](auto& v) { return sum_to(v[0], {3, 1}); }, {x}, "sum_to [3, 1]");
  check([](auto& v) { return sum_to(v[0], {1, 4}); }, {x}, "sum_to [1, 4]");
  check([](auto& v) { return sum_to(v[0], {2, 1, 4}); }, {x}, "sum_to [2, 1, 4]");
}

// ---- softmax family ----

BOOST_AUTO_TEST_CASE(softmax_and_log_softmax_every_dim) {
  uint64_t seed = 800;
  for (Layout la : kLayouts)
    for (int64_t dim : {0, 1, 2, -1}) {
      const Tensor x = input({3, 4, 5}, seed++, la, -3, 3);
      const std::string what = describe({x}) + fmt::format("dim {}", dim);
      check([dim](auto& v) { return softmax(v[0], dim); }, {x}, "softmax " + what);
      check([dim](auto& v) { return log_softmax(v[0], dim); }, {x}, "log_softmax " + what);
    }
}

// ---- matmul ----

BOOST_AUTO_TEST_CASE(matmul_2d_batched_broadcast_transposed) {
  uint64_t seed = 900;
  const std::vector<std::pair<Shape, Shape>> pairs = {
      {{3, 4}, {4, 5}},       {{2, 3, 4}, {2, 4, 5}},    {{2, 3, 4}, {4, 5}},      {{3, 4}, {2, 4, 5}},
      {{2, 1, 3, 4}, {3, 4, 2}}, {{1, 4}, {4, 1}},        {{5, 1}, {1, 3}}};
  for (const auto& [sa, sb] : pairs)
    for (Layout la : kLayouts)
      for (Layout lb : kLayouts) {
        const Tensor a = input(sa, seed++, la), b = input(sb, seed++, lb);
        check([](auto& x) { return matmul(x[0], x[1]); }, {a, b}, "matmul " + describe({a, b}));
      }
  // A batch operand broadcast by expand (stride 0) and one sliced along the batch dim.
  const Tensor a = input({1, 3, 4}, seed++), b = input({4, 4, 2}, seed++);
  check([](auto& x) { return matmul(x[0].expand({2, 3, 4}), x[1].slice(0, 0, 4, 2)); }, {a, b},
        "matmul expanded @ batch-sliced");
  check([](auto& x) { return matmul(x[0].permute({1, 0, 2}), x[1].transpose(-1, -2)); },
        {input({3, 2, 4}, seed++), input({2, 5, 4}, seed++)}, "matmul permuted batch operands");
}

// ---- shape ops ----

BOOST_AUTO_TEST_CASE(views_and_copies) {
  uint64_t seed = 1000;
  for (Layout la : kLayouts) {
    const Tensor x = input({2, 3, 4}, seed++, la);
    const std::string what = describe({x});
    check([](auto& v) { return reshape(v[0], {4, 6}); }, {x}, "reshape " + what);
    check([](auto& v) { return reshape(v[0], {-1}); }, {x}, "reshape -1 " + what);
    check([](auto& v) { return v[0].flatten(1); }, {x}, "flatten " + what);
    check([](auto& v) { return v[0].view({2, 12}).slice(1, 0, 12, 5); }, {input({2, 3, 4}, seed++)}, "view+slice");
    check([](auto& v) { return transpose(v[0], 0, 2); }, {x}, "transpose " + what);
    check([](auto& v) { return permute(v[0], {2, 0, 1}); }, {x}, "permute " + what);
    check([](auto& v) { return slice(v[0], 2, 1, 4, 2); }, {x}, "slice step 2 " + what);
    check([](auto& v) { return slice(v[0], 1, -2, 3); }, {x}, "slice negative start " + what);
    check([](auto& v) { return v[0].select(1, 2); }, {x}, "select " + what);
    check([](auto& v) { return unsqueeze(v[0], 1); }, {x}, "unsqueeze " + what);
    check([](auto& v) { return squeeze(unsqueeze(v[0], 3), 3); }, {x}, "squeeze " + what);
    check([](auto& v) { return contiguous(v[0]); }, {x}, "contiguous " + what);
    check([](auto& v) { return v[0].clone(); }, {x}, "clone " + what);
    // views of views: a slice of a transpose of a slice, then reshaped (which must copy)
    check([](auto& v) { return v[0].slice(2, 0, 4, 2).transpose(0, 1).slice(0, 1, 3).reshape({-1}); }, {x},
          "view of view " + what);
  }
  const Tensor col = input({3, 1}, seed++, Layout::sliced);
  check([](auto& v) { return expand(v[0], {2, 3, 4}); }, {col}, "expand");
  check([](auto& v) { return expand(v[0], {2, 3, 4}).contiguous() * 2.0; }, {col}, "expand then contiguous");
  check([](auto& v) { return expand(v[0], {3, 4}).t().reshape({2, 6}); }, {col}, "expand then reshape");
}

BOOST_AUTO_TEST_CASE(concat_and_stack) {
  uint64_t seed = 1100;
  for (Layout la : kLayouts)
    for (int64_t dim : {0, 1, -1}) {
      Shape s1 = {2, 3}, s2 = {2, 3};
      const int64_t d = dim < 0 ? dim + 2 : dim;
      s2[d] = 4;
      const Tensor a = input(s1, seed++, la), b = input(s2, seed++, Layout::contiguous), c = input(s1, seed++, la);
      check([dim](auto& v) { return concat({v[0], v[1], v[2]}, dim); }, {a, b, c},
            fmt::format("concat dim {} {}", dim, describe({a, b, c})));
      check([dim](auto& v) { return stack({v[0], v[1]}, dim); }, {a, c},
            fmt::format("stack dim {} {}", dim, describe({a, c})));
    }
  const Tensor a = input({2, 3}, seed++);
  check([](auto& v) { return stack({v[0], v[0] * 2.0}, 2); }, {a}, "stack at the end, same input twice");
}

// ---- indexing and selection ----

BOOST_AUTO_TEST_CASE(index_select_gather_embedding) {
  uint64_t seed = 1200;
  for (DType itype : {DType::i32, DType::i64})
    for (Layout la : kLayouts) {
      const Tensor x = input({4, 5, 3}, seed++, la);
      // repeated indices: their gradients must add up
      const Tensor idx = Tensor::from_vector<int64_t>({3, 0, 3, 1, 3}, {5}).to(itype);
      const std::string what = describe({x}) + std::string(dtype_name(itype));
      check([&](auto& v) { return index_select(v[0], 0, idx); }, {x}, "index_select dim 0 " + what);
      check([&](auto& v) { return index_select(v[0], 1, idx); }, {x}, "index_select dim 1 " + what);
      check([&](auto& v) { return index_select(v[0], -1, idx.slice(0, 1, 4, 2)); }, {x}, "index_select dim -1 " + what);

      Generator gen(seed++);
      const Tensor g0 = randint(0, 4, {6, 2, 3}, gen, itype);  // taller than x along dim 0
      const Tensor g1 = randint(0, 5, {3, 4, 2}, gen, itype);  // smaller than x elsewhere
      const Tensor g2 = randint(0, 3, {3, 5, 2}, gen, itype).transpose(0, 1);  // a strided index, [5, 3, 2]
      check([&](auto& v) { return gather(v[0], 0, g0); }, {x}, "gather dim 0 " + what);
      check([&](auto& v) { return gather(v[0], 1, g1); }, {x}, "gather dim 1 " + what);
      check([&](auto& v) { return gather(v[0].transpose(0, 1), 2, g2); }, {x}, "gather dim 2 " + what);

      const Tensor weight = input({7, 3}, seed++, la);
      const Tensor ids = Tensor::from_vector<int64_t>({6, 0, 2, 2, 5, 0}, {2, 3}).to(itype);
      check([&](auto& v) { return embedding(v[0], ids); }, {weight}, "embedding " + what);
      check([&](auto& v) { return embedding(v[0], ids.t()); }, {weight}, "embedding, transposed ids " + what);
    }
}

BOOST_AUTO_TEST_CASE(where_and_masked_fill) {
  uint64_t seed = 1300;
  for (Layout la : kLayouts) {
    Generator gen(seed++);
    const Tensor cond = greater(rand({3, 4}, gen, DType::f64), Tensor::scalar(0.4, DType::f64));
    const Tensor a = input({3, 4}, seed++, la), b = input({4}, seed++), row_mask = cond.slice(0, 0, 1);
    check([&](auto& v) { return where(cond, v[0], v[1]); }, {a, b}, "where " + describe({a, b}));
    check([&](auto& v) { return where(cond.t(), v[0].t(), v[1].unsqueeze(1)); }, {a, b}, "where transposed");
    check([&](auto& v) { return where(row_mask, v[0], v[1]); }, {a, b}, "where broadcast condition");
    check([&](auto& v) { return masked_fill(v[0], cond, -7.5); }, {a}, "masked_fill " + describe({a}));
    check([&](auto& v) { return masked_fill(v[0], row_mask, 0.0); }, {a}, "masked_fill broadcast mask");
  }
}

// ---- a composite: the pieces of a training step used together ----

BOOST_AUTO_TEST_CASE(composite_mlp_loss) {
  const Tensor x = input({4, 5}, 1400), w1 = input({5, 6}, 1401, Layout::transposed), b1 = input({6}, 1402);
  const Tensor w2 = input({6, 3}, 1403), b2 = input({3}, 1404, Layout::sliced);
  const Tensor labels = Tensor::from_vector<int64_t>({0, 2, 1, 2}, {4, 1});
  check(
      [&](auto& v) {
        const Tensor h = tanh(add(matmul(v[0], v[1]), v[2]));
        const Tensor logp = log_softmax(add(matmul(h, v[3]), v[4]), -1);
        return neg(mean(gather(logp, 1, labels)));
      },
      {x, w1, b1, w2, b2}, "mlp loss");
}

// ---- f32 ----
// In f32 the projected loss carries a rounding error of about 1e-7 relative; a central difference
// divides it by 2*eps, so eps must be large (1e-2 here: rounding error ~1e-5) while its truncation
// error, eps^2 * f''' / 6, stays ~1e-4 for these smooth O(1) functions. atol = rtol = 1e-2 is then
// ~100x above what a correct backward can be off by, while a wrong formula is off by O(1).
// The kinked ops (abs, relu, clamp, max) keep their inputs at least 0.1 > eps from the kink.

BOOST_AUTO_TEST_CASE(f32_subset) {
  GradcheckOptions f32;
  f32.eps = 1e-2;
  f32.atol = 1e-2;
  f32.rtol = 1e-2;
  uint64_t seed = 1500;
  for (Layout la : {Layout::contiguous, Layout::transposed}) {
    const Tensor a = input({3, 4}, seed++, la, -1, 1, DType::f32);
    const Tensor b = input({4}, seed++, Layout::contiguous, 0.5, 1.5, DType::f32);
    const Tensor m = input({4, 5}, seed++, la, -1, 1, DType::f32);
    Tensor k = input({3, 4}, seed++, la, 0.1, 1, DType::f32);
    {
      NoGradGuard no_grad;
      Generator gen(seed++);
      k.copy_(where(greater(rand({3, 4}, gen), Tensor::scalar(0.5)), k, neg(k)));
    }
    const std::string what = describe({a});
    check([](auto& x) { return x[0] * x[1] + x[0] / x[1]; }, {a, b}, "f32 mul/div/add " + what, f32);
    check([](auto& x) { return matmul(x[0], x[1]); }, {a, m}, "f32 matmul " + what, f32);
    check([](auto& x) { return exp(x[0]) + log(x[1]) - tanh(x[0]); }, {a, b}, "f32 exp/log/tanh " + what, f32);
    check([](auto& x) { return sigmoid(x[0]) * gelu(x[0]) + silu(x[0]); }, {a}, "f32 sigmoid/gelu/silu " + what, f32);
    check([](auto& x) { return abs(x[0]) + relu(x[0]) + clamp(x[0], -2.0, 0.05); }, {k}, "f32 kinks " + what, f32);
    check([](auto& x) { return softmax(x[0], 0) + sum(log_softmax(x[0], 1), {1}, true); }, {a},
          "f32 softmax " + what, f32);
    check([](auto& x) { return var(x[0], {1}) + sum(mean(x[0], {0})) + max(x[0], {1}); }, {a},
          "f32 reductions " + what, f32);
    const Tensor idx = Tensor::from_vector<int32_t>({2, 0, 2}, {3});
    check([&](auto& x) { return index_select(x[0], 0, idx); }, {a}, "f32 index_select " + what, f32);
    check([](auto& x) { return square(x[0].to(DType::f64)); }, {a}, "f32 -> f64 conversion " + what, f32);
  }
}

BOOST_AUTO_TEST_SUITE_END()
