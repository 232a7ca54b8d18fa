// Prefix-LM attention (AttentionOptions::prefix_lengths, autograd/ops/attention.h): query i of
// batch b sees key j iff j < prefix_lengths[b] or j <= i, minus padding keys. Checked against an
// explicit loop reference, by finite differences, by the prefix-LM dependency property, against
// the plain causal / non-causal paths at the two ends, and for bad input.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "tests/support/compare_helpers.h"
#include "tests/support/gradcheck_helpers.h"
#include "autograd/error.h"
#include "autograd/ops.h"

using namespace tessera;
using test::expect_ok;
using test::leaf;
using test::max_abs_diff;

namespace {

bool sees(int64_t i, int64_t j, int64_t prefix, bool padded) { return !padded && (j < prefix || j <= i); }

// softmax(q k^T / sqrt(D) with -inf where the rule hides a key) v, written out as loops.
// A query that sees no key gets a zero row (the op's documented choice; a plain softmax gives NaN).
Tensor reference_prefix_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                  const std::vector<int64_t>& prefix, const std::vector<uint8_t>& padding) {
  const int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), D = q.size(3), Tk = k.size(2), Dv = v.size(3);
  const auto vq = q.to_vector<double>(), vk = k.to_vector<double>(), vv = v.to_vector<double>();
  const double scale = 1.0 / std::sqrt(double(D)), minus_inf = -std::numeric_limits<double>::infinity();
  std::vector<double> out(size_t(B * H * Tq * Dv), 0.0);
  std::vector<double> logits(static_cast<size_t>(Tk));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < Tq; ++i) {
        double top = minus_inf;
        for (int64_t j = 0; j < Tk; ++j) {
          const bool padded = !padding.empty() && padding[size_t(b * Tk + j)];
          double s = 0;
          for (int64_t d = 0; d < D; ++d)
            s += vq[size_t(((b * H + h) * Tq + i) * D + d)] * vk[size_t(((b * H + h) * Tk + j) * D + d)];
          logits[size_t(j)] = sees(i, j, prefix[size_t(b)], padded) ? s * scale : minus_inf;
          top = std::max(top, logits[size_t(j)]);
        }
        if (top == minus_inf) continue;
        double total = 0;
        for (double& l : logits) total += (l = std::exp(l - top));
        for (int64_t j = 0; j < Tk; ++j)
          for (int64_t e = 0; e < Dv; ++e)
            out[size_t(((b * H + h) * Tq + i) * Dv + e)] +=
                logits[size_t(j)] / total * vv[size_t(((b * H + h) * Tk + j) * Dv + e)];
      }
  return Tensor::from_vector(out, {B, H, Tq, Dv});
}

Tensor u8_mask(const std::vector<uint8_t>& values, const Shape& shape) {
  std::vector<uint8_t> copy = values;
  return Tensor::from_vector(copy, shape);
}

AttentionOptions prefix_lm(const Tensor& lengths, const Tensor& padding = Tensor()) {
  AttentionOptions o;
  o.causal = true;
  o.prefix_lengths = lengths;
  o.key_padding_mask = padding;
  return o;
}

// Rows (dim 1 of [B, T, C]) of a and b that differ, as a 0/1 per row of batch `batch`.
std::vector<bool> changed_rows(const Tensor& a, const Tensor& b, int64_t batch) {
  const int64_t T = a.size(1), C = a.size(2);
  const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  std::vector<bool> changed(static_cast<size_t>(T), false);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < C; ++c) {
      const size_t at = size_t((batch * T + t) * C + c);
      if (va[at] != vb[at]) changed[size_t(t)] = true;
    }
  return changed;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(prefix_attention)

// Random shapes (Tq == Tk and Tq != Tk, both supported), per-batch prefixes that include 0 and Tk,
// with and without key padding, in every integer dtype.
BOOST_AUTO_TEST_CASE(matches_explicit_reference) {
  std::mt19937_64 rng(1701);
  auto pick = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  const DType dtypes[] = {DType::i64, DType::i32, DType::u8};
  for (int round = 0; round < 12; ++round) {
    const int64_t B = pick(3, 5), H = pick(1, 3), Tk = pick(1, 11), Tq = round % 2 ? pick(1, 11) : Tk;
    const int64_t D = pick(1, 9), Dv = pick(1, 6);
    std::vector<int64_t> prefix(static_cast<size_t>(B));
    prefix[0] = 0;
    prefix[1] = Tk;
    for (int64_t b = 2; b < B; ++b) prefix[size_t(b)] = pick(0, Tk);
    std::vector<uint8_t> padding(static_cast<size_t>(B * Tk));
    for (auto& p : padding) p = pick(0, 3) == 0;
    const Tensor q = leaf({B, H, Tq, D}, 100 + round, -2, 2), k = leaf({B, H, Tk, D}, 200 + round, -2, 2);
    const Tensor v = leaf({B, H, Tk, Dv}, 300 + round);
    const Tensor lengths = Tensor::from_vector(prefix, {B}).to(dtypes[round % 3]);
    BOOST_TEST_CONTEXT("round " << round << ": B " << B << " H " << H << " Tq " << Tq << " Tk " << Tk) {
      const Tensor plain = scaled_dot_product_attention(q, k, v, prefix_lm(lengths));
      BOOST_TEST(max_abs_diff(plain, reference_prefix_attention(q, k, v, prefix, {})) < 1e-12);
      const Tensor padded = scaled_dot_product_attention(q, k, v, prefix_lm(lengths, u8_mask(padding, {B, Tk})));
      BOOST_TEST(max_abs_diff(padded, reference_prefix_attention(q, k, v, prefix, padding)) < 1e-12);
    }
  }
}

BOOST_AUTO_TEST_CASE(fused_qkv_matches_explicit_reference) {
  const int64_t B = 3, T = 6, H = 2, D = 3, C = H * D;
  const Tensor qkv = leaf({B, T, 3 * C}, 400, -2, 2);
  const std::vector<int64_t> prefix{4, 0, 6};
  const std::vector<uint8_t> padding{0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0};
  const Tensor heads = qkv.detach().reshape({B, T, 3, H, D}).permute({2, 0, 3, 1, 4});
  const Tensor q = heads.select(0, 0), k = heads.select(0, 1), v = heads.select(0, 2);
  const Tensor expected =
      reference_prefix_attention(q, k, v, prefix, padding).transpose(1, 2).contiguous().reshape({B, T, C});
  const AttentionOptions o = prefix_lm(Tensor::from_vector(prefix, {B}), u8_mask(padding, {B, T}));
  BOOST_TEST(max_abs_diff(self_attention_qkv(qkv, H, o), expected) < 1e-12);
}

BOOST_AUTO_TEST_CASE(gradcheck_q_k_v) {
  const Tensor q = leaf({3, 2, 5, 3}, 500), k = leaf({3, 2, 5, 3}, 501), v = leaf({3, 2, 5, 2}, 502);
  const Tensor lengths = Tensor::from_vector(std::vector<int64_t>{0, 3, 5}, {3});
  const AttentionOptions plain = prefix_lm(lengths);
  expect_ok([plain](auto& t) { return scaled_dot_product_attention(t[0], t[1], t[2], plain); }, {q, k, v});
  // key 0 of batch 0 padded: with prefix 0 its query 0 sees nothing (zero output, no gradient)
  const AttentionOptions padded =
      prefix_lm(lengths, u8_mask({1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0}, {3, 5}));
  expect_ok([padded](auto& t) { return scaled_dot_product_attention(t[0], t[1], t[2], padded); }, {q, k, v});
  // Tq != Tk
  const Tensor q_long = leaf({3, 2, 7, 3}, 503);
  expect_ok([plain](auto& t) { return scaled_dot_product_attention(t[0], t[1], t[2], plain); }, {q_long, k, v});
}

BOOST_AUTO_TEST_CASE(gradcheck_through_fused_qkv) {
  const Tensor qkv = leaf({3, 5, 18}, 510);
  const Tensor lengths = Tensor::from_vector(std::vector<int32_t>{2, 0, 5}, {3});
  const AttentionOptions plain = prefix_lm(lengths);
  expect_ok([plain](auto& t) { return self_attention_qkv(t[0], 3, plain); }, {qkv});
  const AttentionOptions padded = prefix_lm(lengths, u8_mask({0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0}, {3, 5}));
  expect_ok([padded](auto& t) { return self_attention_qkv(t[0], 3, padded); }, {qkv});
}

// Perturbing the q, k and v of one token changes exactly the outputs that may see it.
BOOST_AUTO_TEST_CASE(suffix_rows_do_not_leak_backwards_and_prefix_rows_reach_everyone) {
  const int64_t B = 2, T = 7, H = 2, C = 6, P = 3;
  const Tensor qkv = leaf({B, T, 3 * C}, 520).detach();
  const AttentionOptions o = prefix_lm(Tensor::from_vector(std::vector<int64_t>{P, P}, {B}));
  const Tensor base = self_attention_qkv(qkv, H, o);
  for (int64_t row = 0; row < T; ++row) {
    Tensor bumped = qkv.clone();
    double* x = bumped.data<double>() + (1 * T + row) * 3 * C;  // batch 1 only
    for (int64_t c = 0; c < 3 * C; ++c) x[c] += 0.5 + 0.1 * double(c % 4);
    const std::vector<bool> changed = changed_rows(base, self_attention_qkv(bumped, H, o), 1);
    BOOST_TEST_CONTEXT("perturbed row " << row) {
      for (int64_t i = 0; i < T; ++i) {
        // a prefix row is seen by all; a suffix row only by itself and later rows
        const bool may_see = row < P || row <= i;
        BOOST_TEST(changed[size_t(i)] == may_see, "output row " << i);
      }
      BOOST_TEST(changed_rows(base, self_attention_qkv(bumped, H, o), 0) == std::vector<bool>(size_t(T), false));
    }
  }
}

// The two ends of the range take the masked path but must agree bitwise with the existing ones.
BOOST_AUTO_TEST_CASE(prefix_zero_is_causal_and_prefix_all_is_bidirectional) {
  const int64_t B = 2, T = 9;
  const Tensor q = leaf({B, 3, T, 5}, 530, -2, 2), k = leaf({B, 3, T, 5}, 531, -2, 2), v = leaf({B, 3, T, 4}, 532);
  const std::vector<uint8_t> pad{0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
  for (const Tensor& padding : {Tensor(), u8_mask(pad, {B, T})}) {
    AttentionOptions causal, full;
    causal.causal = true;
    causal.key_padding_mask = full.key_padding_mask = padding;
    const AttentionOptions zero = prefix_lm(Tensor::zeros({B}, DType::i64), padding);
    const AttentionOptions all = prefix_lm(Tensor::full({B}, double(T), DType::i32), padding);
    auto run = [&](const AttentionOptions& o) {
      std::vector<Tensor> leaves{q.detach(), k.detach(), v.detach()};
      for (Tensor& t : leaves) t.requires_grad_();
      Tensor out = scaled_dot_product_attention(leaves[0], leaves[1], leaves[2], o);
      sum(out * out).backward();
      return std::vector<Tensor>{out, leaves[0].grad(), leaves[1].grad(), leaves[2].grad()};
    };
    const auto r_causal = run(causal), r_zero = run(zero), r_full = run(full), r_all = run(all);
    for (size_t i = 0; i < r_causal.size(); ++i) {
      BOOST_TEST(max_abs_diff(r_zero[i], r_causal[i]) == 0.0, "output/grad " << i << " (prefix 0 vs causal)");
      BOOST_TEST(max_abs_diff(r_all[i], r_full[i]) == 0.0, "output/grad " << i << " (prefix T vs non-causal)");
    }
    // and the two ends really differ, so the comparisons above can fail
    BOOST_TEST(max_abs_diff(r_causal[0], r_full[0]) > 1e-3);
  }
  const Tensor qkv = leaf({B, T, 12}, 533, -2, 2);
  AttentionOptions causal, full;
  causal.causal = true;
  BOOST_TEST(max_abs_diff(self_attention_qkv(qkv, 2, prefix_lm(Tensor::zeros({B}, DType::u8))),
                          self_attention_qkv(qkv, 2, causal)) == 0.0);
  BOOST_TEST(max_abs_diff(self_attention_qkv(qkv, 2, prefix_lm(Tensor::full({B}, double(T), DType::u8))),
                          self_attention_qkv(qkv, 2, full)) == 0.0);
}

BOOST_AUTO_TEST_CASE(rejects_bad_prefix_lengths) {
  const Tensor q = leaf({2, 2, 4, 3}, 540), qkv = leaf({2, 4, 9}, 541);
  auto expect_error = [&](const AttentionOptions& o, const std::string& words) {
    for (bool fused : {false, true}) {
      try {
        fused ? self_attention_qkv(qkv, 3, o) : scaled_dot_product_attention(q, q, q, o);
        BOOST_ERROR("no error for " << words);
      } catch (const Error& e) {
        const std::string what = e.what();
        BOOST_TEST((what.find("prefix_lengths") != std::string::npos && what.find(words) != std::string::npos),
                   what);
      }
    }
  };
  AttentionOptions not_causal = prefix_lm(Tensor::zeros({2}, DType::i64));
  not_causal.causal = false;
  expect_error(not_causal, "causal");
  expect_error(prefix_lm(Tensor::zeros({3}, DType::i64)), "shape");
  expect_error(prefix_lm(Tensor::zeros({2, 1}, DType::i64)), "shape");
  expect_error(prefix_lm(Tensor::zeros({2}, DType::f32)), "integer");
  expect_error(prefix_lm(Tensor::from_vector(std::vector<int64_t>{1, -1}, {2})), "outside");
  expect_error(prefix_lm(Tensor::from_vector(std::vector<int64_t>{5, 0}, {2})), "outside");
}

BOOST_AUTO_TEST_SUITE_END()
