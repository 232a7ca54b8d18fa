// The reverse-mode engine (accumulation, no-grad, detach, zero_grad, graph release), the errors a
// user gets for bad use, the CLI's handling of errors, and the caching allocator in steady state.
#include <boost/test/unit_test.hpp>

#include <cstdlib>

#include <sys/wait.h>

#include <cstdio>

#include "autograd/allocator.h"
#include "autograd/error.h"
#include "autograd/ops.h"
#include "autograd/random.h"

using namespace tessera;

namespace {

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

Tensor leaf(const std::vector<double>& v, const Shape& shape) {
  Tensor t = Tensor::from_vector<double>(v, shape);
  t.requires_grad_();
  return t;
}

template <class F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    BOOST_ERROR("no error thrown; expected one mentioning " << parts.front());
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const std::string& p : parts) BOOST_TEST(message.find(p) != std::string::npos, "'" << p << "' missing from: " << message);
  }
}

struct Run {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

Run run_cli(const std::string& args) {
  Run r;
  FILE* pipe = popen((std::string(TESSERA_BINARY) + " " + args + " 2>&1").c_str(), "r");
  BOOST_TEST_REQUIRE(pipe != nullptr);
  char buffer[512];
  while (fgets(buffer, sizeof buffer, pipe)) r.output += buffer;
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(engine)

BOOST_AUTO_TEST_CASE(gradients_accumulate_in_leaves) {
  Tensor x = leaf({1, 2, 3}, {3});
  // x feeds the graph along two paths: d/dx sum(x*x + 3x) = 2x + 3
  sum(x * x + x * 3.0).backward();
  BOOST_TEST(values(x.grad()) == (std::vector<double>{5, 7, 9}));
  // a second backward adds to the first
  sum(x * 2.0).backward();
  BOOST_TEST(values(x.grad()) == (std::vector<double>{7, 9, 11}));
  x.zero_grad();
  BOOST_TEST(!x.grad().defined());
  sum(x).backward();
  BOOST_TEST(values(x.grad()) == (std::vector<double>{1, 1, 1}));
  BOOST_TEST(x.is_leaf());
  BOOST_TEST(!(x * 2.0).is_leaf());
}

BOOST_AUTO_TEST_CASE(explicit_gradient_is_not_modified) {
  // The engine may keep a gradient tensor as a leaf's .grad; it must never be the caller's.
  Tensor x = leaf({1, 2}, {2});
  const Tensor v = Tensor::ones({2}, DType::f64);
  x.backward(v);
  x.backward(v);
  BOOST_TEST(values(v) == (std::vector<double>{1, 1}));
  BOOST_TEST(values(x.grad()) == (std::vector<double>{2, 2}));
  Tensor y = x.clone();
  y.backward(v);
  BOOST_TEST(values(v) == (std::vector<double>{1, 1}));
  BOOST_TEST(values(x.grad()) == (std::vector<double>{3, 3}));
}

BOOST_AUTO_TEST_CASE(no_grad_detach_requires_grad) {
  Tensor x = leaf({1, 2}, {2});
  {
    NoGradGuard no_grad;
    BOOST_TEST(!grad_enabled());
    const Tensor y = exp(x);
    BOOST_TEST(!y.requires_grad());
    BOOST_TEST(!y.grad_fn());
  }
  BOOST_TEST(grad_enabled());
  // detach cuts the graph: only the attached path gives a gradient
  sum(x * x.detach()).backward();
  BOOST_TEST(values(x.grad()) == (std::vector<double>{1, 2}));
  BOOST_TEST(x.detach().storage() == x.storage());
  BOOST_TEST(!x.detach().requires_grad());
  // requires_grad_(false) stops recording
  Tensor z = Tensor::ones({2}, DType::f64);
  BOOST_TEST(!(z * 2.0).requires_grad());
  z.requires_grad_();
  BOOST_TEST((z * 2.0).requires_grad());
  z.requires_grad_(false);
  BOOST_TEST(!(z * 2.0).requires_grad());
  expect_error([&] { (x * 2.0).requires_grad_(); }, {"requires_grad_", "not a leaf", "[2]"});
}

BOOST_AUTO_TEST_CASE(graph_is_freed_after_backward) {
  Tensor x = leaf({1, 2}, {2});
  Tensor loss = sum(exp(x) * 2.0);
  const std::shared_ptr<Node> node = loss.grad_fn();
  loss.backward();
  BOOST_TEST(node->inputs.empty());
  BOOST_TEST(!node->backward);
  expect_error([&] { loss.backward(); }, {"backward", "already freed", "retain_graph"});
  // retain_graph keeps it for a second run, which then frees it
  Tensor again = sum(exp(x));
  x.zero_grad();
  again.backward(Tensor(), true);
  again.backward();
  BOOST_TEST(std::abs(values(x.grad())[0] - 2 * std::exp(1.0)) < 1e-12);
  BOOST_CHECK_THROW(again.backward(), Error);
}

BOOST_AUTO_TEST_CASE(gradient_of_a_diamond_and_of_views) {
  // y = a view used twice plus the base: every path accumulates.
  Tensor x = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor t = x.t();
  // d/dx [sum(t*t) + sum(x) + sum(columns 0 and 2 of x)] = 2x + 1 + (1 on those columns)
  (sum(t * t) + sum(x) + sum(x.slice(1, 0, 3, 2))).backward();
  BOOST_TEST(values(x.grad()) == (std::vector<double>{4, 5, 8, 10, 11, 14}));
}

BOOST_AUTO_TEST_CASE(a_failed_backward_leaves_nothing_behind) {
  // loss = sum(y) + sum(flaky(y)), y = exp(x); flaky's backward throws the first time. Whatever
  // reached y's node before the throw must not leak into the next backward.
  Tensor x = leaf({0.5, 1}, {2});
  const Tensor y = exp(x);
  bool throw_next = true;
  Tensor flaky_out;
  {
    NoGradGuard no_grad;
    flaky_out = y * 1.0;
  }
  const Tensor z = record(flaky_out, "flaky", {y}, [&throw_next](const Tensor& g) {
    if (throw_next) {
      throw_next = false;
      fail("flaky: backward failed on purpose");
    }
    return std::vector<Tensor>{g};
  });
  const Tensor loss = sum(y) + sum(z);
  expect_error([&] { loss.backward(Tensor(), true); }, {"flaky"});
  x.zero_grad();
  loss.backward();
  BOOST_TEST(std::abs(values(x.grad())[0] - 2 * std::exp(0.5)) < 1e-12);
  BOOST_TEST(std::abs(values(x.grad())[1] - 2 * std::exp(1.0)) < 1e-12);
}

BOOST_AUTO_TEST_CASE(an_empty_slice_passes_no_gradient) {
  // The slice's backward copies its (empty) gradient into a strided window of zeros; that copy
  // must write nothing.
  Tensor x = leaf({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {3, 4});
  (sum(x * 0.0) + sum(x.slice(1, 2, 2) * 3.0)).backward();
  BOOST_TEST(values(x.grad()) == std::vector<double>(12, 0.0));
}

// The one dtype switch of every floating-point op: f32 and f64 reach the kernel as float and
// double; any other dtype is an error naming the op and the dtype, and the kernel never runs.
BOOST_AUTO_TEST_CASE(floating_dtype_visitor_names_the_op_and_the_dtype) {
  BOOST_TEST(visit_floating(DType::f32, "my_op", [](auto tag) { return sizeof(tag); }) == sizeof(float));
  BOOST_TEST(visit_floating(DType::f64, "my_op", [](auto tag) { return sizeof(tag); }) == sizeof(double));
  for (DType t : {DType::i32, DType::i64, DType::u8}) {
    bool ran = false;
    expect_error([&] { visit_floating(t, "my_op", [&](auto) { ran = true; }); }, {"my_op", std::string(dtype_name(t))});
    BOOST_TEST(!ran);
  }
}

BOOST_AUTO_TEST_CASE(bad_use_names_the_op_and_both_shapes) {
  const Tensor a = Tensor::zeros({2, 3}, DType::f64), b = Tensor::zeros({4}, DType::f64);
  expect_error([&] { add(a, b); }, {"add", "[2, 3]", "[4]"});
  expect_error([&] { sub(a, b); }, {"sub", "[2, 3]", "[4]"});
  expect_error([&] { mul(a, b); }, {"mul", "[2, 3]", "[4]"});
  expect_error([&] { div(a, b); }, {"div", "[2, 3]", "[4]"});
  expect_error([&] { add(a, a.to(DType::f32)); }, {"add", "[2, 3] f64", "[2, 3] f32"});
  expect_error([&] { add(a.to(DType::i64), a.to(DType::i64)); }, {"add", "floating-point", "i64"});
  expect_error([&] { exp(a.to(DType::i32)); }, {"exp", "i32", "[2, 3]"});
  expect_error([&] { matmul(a, a); }, {"matmul", "[2, 3]", "[2, 3]"});
  expect_error([&] { matmul(a, Tensor::zeros({3, 2})); }, {"matmul", "[2, 3] f64", "[3, 2] f32"});
  expect_error([&] { matmul(b, a); }, {"matmul", "[4]", "[2, 3]"});
  expect_error([&] { matmul(Tensor::zeros({2, 2, 3}, DType::f64), Tensor::zeros({3, 3, 1}, DType::f64)); },
               {"matmul", "[2]", "[3]"});
  expect_error([&] { reshape(a, {4, 2}); }, {"reshape", "[2, 3]", "[4, 2]"});
  expect_error([&] { expand(a, {2, 4}); }, {"expand", "[2, 3]", "[2, 4]"});
  expect_error([&] { concat({a, b}, 0); }, {"concat", "[4]", "[2, 3]"});
  expect_error([&] { a.transpose(0, 2); }, {"transpose", "dim 2"});
  expect_error([&] { sum(a.to(DType::u8)); }, {"sum", "u8"});
  expect_error([&] { softmax(a.to(DType::i64), 1); }, {"softmax", "i64"});
  Tensor counts = Tensor::zeros({3}, DType::i64);
  expect_error([&] { add_(counts, counts); }, {"add_", "i64", "[3]"});
  expect_error([&] { mul_(counts, 2); }, {"mul_", "i64", "[3]"});
  Tensor dst = Tensor::zeros({4}, DType::f64);
  expect_error([&] { add_(dst, a); }, {"add_", "[2, 3]", "[4]"});
  // integer tensors and gradients
  expect_error([&] { Tensor::zeros({3}, DType::i64).requires_grad_(); }, {"requires_grad_", "[3]", "i64"});
  Tensor x = leaf({1, 2, 3}, {3});
  expect_error([&] { sum(x).to(DType::i64).backward(); }, {"backward", "[]", "i64"});
  expect_error([&] { sum(x.to(DType::i32).to(DType::f64)).backward(); }, {"backward", "does not require grad"});
  expect_error([&] { (x * 2.0).backward(); }, {"backward", "non-scalar", "[3]"});
  expect_error([&] { (x * 2.0).backward(Tensor::ones({2}, DType::f64)); }, {"backward", "[2]", "[3]"});
  expect_error([&] { (x * 2.0).backward(Tensor::ones({3}, DType::f32)); }, {"backward", "f32", "f64"});
}

BOOST_AUTO_TEST_CASE(cli_turns_errors_into_messages_and_exit_codes) {
  const Run unknown = run_cli("no-such-command");
  BOOST_TEST(unknown.exit_code != 0);
  BOOST_TEST(unknown.output.find("unknown command 'no-such-command'") != std::string::npos, unknown.output);
  const Run extra = run_cli("info extra-arg");
  BOOST_TEST(extra.exit_code != 0);
  BOOST_TEST(extra.output.find("extra-arg") != std::string::npos, extra.output);
  const Run ok = run_cli("info");
  BOOST_TEST(ok.exit_code == 0, ok.output);
  // Idle OpenMP threads sleep instead of spinning (tessera re-executes itself with
  // OMP_WAIT_POLICY=PASSIVE), unless the user chose a policy.
  if (std::getenv("OMP_WAIT_POLICY") == nullptr)
    BOOST_TEST(ok.output.find("omp wait        PASSIVE") != std::string::npos, ok.output);
  setenv("OMP_WAIT_POLICY", "active", 1);
  const Run chosen = run_cli("info");
  unsetenv("OMP_WAIT_POLICY");
  BOOST_TEST(chosen.output.find("omp wait        active") != std::string::npos, chosen.output);
}

BOOST_AUTO_TEST_CASE(steady_state_training_step_does_not_reach_the_system_allocator) {
  // A 2-layer MLP on a fixed batch: forward, backward, SGD with add_. Every buffer of a step is
  // the size of one in the previous step, so after warm-up all come from the cache.
  Generator gen(5);
  const Tensor x = randn({16, 8}, gen), labels = randint(0, 4, {16, 1}, gen);
  Tensor w1 = mul(randn({8, 32}, gen), 0.3), b1 = Tensor::zeros({32});
  Tensor w2 = mul(randn({32, 4}, gen), 0.3), b2 = Tensor::zeros({4});
  std::vector<Tensor*> params = {&w1, &b1, &w2, &b2};
  for (Tensor* p : params) p->requires_grad_();
  std::vector<double> losses;
  auto step = [&] {
    const Tensor h = relu(add(matmul(x, w1), b1));
    const Tensor logp = log_softmax(add(matmul(h, w2), b2), -1);
    Tensor loss = neg(mean(gather(logp, 1, labels)));
    loss.backward();
    losses.push_back(loss.item());
    NoGradGuard no_grad;
    for (Tensor* p : params) {
      add_(*p, p->grad(), -0.5);
      p->zero_grad();
    }
  };
  for (int i = 0; i < 3; ++i) step();
  const AllocatorStats before = allocator_stats();
  for (int i = 0; i < 5; ++i) step();
  const AllocatorStats after = allocator_stats();
  BOOST_TEST(after.system_allocations == before.system_allocations);
  BOOST_TEST(after.cache_hits > before.cache_hits);  // the steps did allocate, from the cache
  BOOST_TEST(losses.back() < losses.front());  // and they trained
}

BOOST_AUTO_TEST_SUITE_END()
