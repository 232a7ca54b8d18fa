// Scaled dot-product attention with its backward (autograd/ops/attention.h).
//
// Every (batch, head) pair is an independent problem, run as three small GEMMs and a row softmax
// on one thread; pairs are spread over the threads (OpenBLAS stays single-threaded inside our
// parallel region). The forward keeps only the probabilities P [B, H, Tq, Tk]; the backward is
//   dV = P^T dO,  dP = dO V^T,  dS = P * (dP - rowsum(dP * P)),  dQ = s dS K,  dK = s dS^T Q.
// Heads are addressed through strides, so q/k/v sliced out of a fused projection are read in
// place and their gradients written in place.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops/attention.h"
#include "kernels/gemm.h"
#include "kernels/reduce.h"
#include "kernels/threads.h"

namespace tessera {
namespace {

// Element (b, h, t, d) of a [B, H, T, D] operand lives at data[b*sb + h*sh + t*sr + d].
template <class T>
struct Heads {
  T* data = nullptr;
  int64_t sb = 0, sh = 0, sr = 0;
  T* at(int64_t b, int64_t h) const { return data + b * sb + h * sh; }
};

struct Problem {
  int64_t batch = 0, heads = 0, tq = 0, tk = 0, d = 0, dv = 0;
  double scale = 1;
  bool causal = false;
  std::vector<uint8_t> padding;  // [batch * tk], 1 = padding key; empty = none
  std::vector<int64_t> prefix;   // [batch], keys every query sees (prefix-LM); empty = none
  bool masked() const { return causal || !padding.empty(); }
};

// Masks a row of logits with -inf and softmaxes it into p; a row with no visible key becomes 0.
template <class T>
void masked_softmax_row(const Problem& pr, int64_t b, int64_t i, T* logits, T* p) {
  // Causal and prefix rules both leave a leading run of keys visible: j < max(i + 1, prefix[b]).
  const int64_t causal_end = pr.causal ? std::min(i + 1, pr.tk) : pr.tk;
  const int64_t visible_end = pr.prefix.empty() ? causal_end : std::max(causal_end, pr.prefix[size_t(b)]);
  const uint8_t* pad = pr.padding.empty() ? nullptr : pr.padding.data() + b * pr.tk;
  int64_t visible = 0;
  for (int64_t j = 0; j < visible_end; ++j) {
    if (pad && pad[j]) logits[j] = -std::numeric_limits<T>::infinity();
    else ++visible;
  }
  for (int64_t j = visible_end; j < pr.tk; ++j) p[j] = 0;
  if (visible == 0) {
    for (int64_t j = 0; j < visible_end; ++j) p[j] = 0;
    return;
  }
  kernels::softmax_rows(logits, 1, visible_end, p);
}

template <class T>
void forward(const Problem& pr, const Heads<const T>& q, const Heads<const T>& k, const Heads<const T>& v,
             const Heads<T>& out, T* probs) {
  const int64_t pairs = pr.batch * pr.heads, tq = pr.tq, tk = pr.tk;
  kernels::parallel_for(pairs, 1, [&](int64_t p0, int64_t p1) {
    std::vector<T> logits(size_t(tq * tk));
    for (int64_t pair = p0; pair < p1; ++pair) {
      const int64_t b = pair / pr.heads, h = pair % pr.heads;
      T* p = probs + pair * tq * tk;
      kernels::gemm({false, true, tq, tk, pr.d, q.sr, k.sr, tk}, T(pr.scale), q.at(b, h), k.at(b, h), T(0),
                    logits.data());
      if (pr.masked()) {
        for (int64_t i = 0; i < tq; ++i) masked_softmax_row(pr, b, i, logits.data() + i * tk, p + i * tk);
      } else {
        kernels::softmax_rows(logits.data(), tq, tk, p);
      }
      kernels::gemm({false, false, tq, pr.dv, tk, tk, v.sr, out.sr}, T(1), p, v.at(b, h), T(0), out.at(b, h));
    }
  });
}

// Gradients into dq/dk/dv where their data pointer is set.
template <class T>
void backward(const Problem& pr, const Heads<const T>& q, const Heads<const T>& k, const Heads<const T>& v,
              const Heads<const T>& g, const T* probs, const Heads<T>& dq, const Heads<T>& dk, const Heads<T>& dv) {
  const int64_t pairs = pr.batch * pr.heads, tq = pr.tq, tk = pr.tk;
  const bool need_ds = dq.data || dk.data;
  kernels::parallel_for(pairs, 1, [&](int64_t p0, int64_t p1) {
    std::vector<T> dp(need_ds ? size_t(tq * tk) : 0), ds(dp.size());
    for (int64_t pair = p0; pair < p1; ++pair) {
      const int64_t b = pair / pr.heads, h = pair % pr.heads;
      const T* p = probs + pair * tq * tk;
      if (dv.data)
        kernels::gemm({true, false, tk, pr.dv, tq, tk, g.sr, dv.sr}, T(1), p, g.at(b, h), T(0), dv.at(b, h));
      if (!need_ds) continue;
      kernels::gemm({false, true, tq, tk, pr.dv, g.sr, v.sr, tk}, T(1), g.at(b, h), v.at(b, h), T(0), dp.data());
      kernels::softmax_backward_rows(p, dp.data(), tq, tk, ds.data());
      if (dq.data)
        kernels::gemm({false, false, tq, pr.d, tk, tk, k.sr, dq.sr}, T(pr.scale), ds.data(), k.at(b, h), T(0),
                      dq.at(b, h));
      if (dk.data)
        kernels::gemm({true, false, tk, pr.d, tq, tk, q.sr, dk.sr}, T(pr.scale), ds.data(), q.at(b, h), T(0),
                      dk.at(b, h));
    }
  });
}

// A [B, H, T, D] tensor as Heads; its last dim must be contiguous (the caller copies otherwise).
template <class T>
Heads<T> heads_of(const Tensor& t) {
  return {static_cast<T*>(t.raw_data()), t.strides()[0], t.strides()[1], t.strides()[2]};
}

Tensor last_dim_contiguous(const Tensor& t) {
  return (t.strides()[3] == 1 || t.size(3) <= 1) ? t.detach() : t.detach().contiguous();
}

std::vector<uint8_t> read_padding(const Tensor& mask, int64_t batch, int64_t tk, const char* op) {
  if (!mask.defined()) return {};
  if (mask.shape() != Shape{batch, tk})
    fail("{}: key_padding_mask has shape {}, expected [{}, {}] (batch, keys)", op, mask.shape_string(), batch, tk);
  if (is_floating(mask.dtype()))
    fail("{}: key_padding_mask must be an integer (u8/i32/i64) tensor, got {}", op, dtype_name(mask.dtype()));
  std::vector<uint8_t> out;
  out.reserve(size_t(batch * tk));
  for (int64_t v : mask.to_vector<int64_t>()) out.push_back(v != 0);
  return out;
}

std::vector<int64_t> read_prefix_lengths(const AttentionOptions& o, int64_t batch, int64_t tk, const char* op) {
  const Tensor& lengths = o.prefix_lengths;
  if (!lengths.defined()) return {};
  if (!o.causal) fail("{}: prefix_lengths needs causal = true (it only widens the causal mask)", op);
  if (lengths.shape() != Shape{batch})
    fail("{}: prefix_lengths has shape {}, expected [{}] (batch)", op, lengths.shape_string(), batch);
  if (is_floating(lengths.dtype()))
    fail("{}: prefix_lengths must be an integer (u8/i32/i64) tensor, got {}", op, dtype_name(lengths.dtype()));
  std::vector<int64_t> out = lengths.to_vector<int64_t>();
  for (size_t b = 0; b < out.size(); ++b)
    if (out[b] < 0 || out[b] > tk)
      fail("{}: prefix_lengths[{}] = {} is outside [0, {}] (keys)", op, b, out[b], tk);
  return out;
}

double resolve_scale(double scale, int64_t d) { return scale != 0 ? scale : 1.0 / std::sqrt(double(std::max<int64_t>(d, 1))); }

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& o) {
  constexpr const char* op = "scaled_dot_product_attention";
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4)
    fail("{}: q, k, v must be [B, H, T, D], got {}, {}, {}", op, q.shape_string(), k.shape_string(), v.shape_string());
  if (q.dtype() != k.dtype() || q.dtype() != v.dtype())
    fail("{}: q, k, v dtypes differ ({}, {}, {})", op, dtype_name(q.dtype()), dtype_name(k.dtype()),
         dtype_name(v.dtype()));
  const int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), D = q.size(3), Tk = k.size(2), Dv = v.size(3);
  if (k.size(0) != B || k.size(1) != H || k.size(3) != D || v.size(0) != B || v.size(1) != H || v.size(2) != Tk)
    fail("{}: shapes do not fit together: q {}, k {}, v {} (expected k [B, H, Tk, D] and v [B, H, Tk, Dv])", op,
         q.shape_string(), k.shape_string(), v.shape_string());
  Problem pr{B, H, Tq, Tk, D, Dv, resolve_scale(o.scale, D), o.causal, read_padding(o.key_padding_mask, B, Tk, op),
             read_prefix_lengths(o, B, Tk, op)};
  const Tensor qc = last_dim_contiguous(q), kc = last_dim_contiguous(k), vc = last_dim_contiguous(v);
  Tensor out = Tensor::empty({B, H, Tq, Dv}, q.dtype());
  Tensor probs = Tensor::empty({B, H, Tq, Tk}, q.dtype());
  if (out.numel() == 0) return out;
  if (Tk == 0) fail("{}: no keys (k is {})", op, k.shape_string());
  visit_floating(q.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    forward<T>(pr, heads_of<const T>(qc), heads_of<const T>(kc), heads_of<const T>(vc), heads_of<T>(out),
               probs.data<T>());
  });
  if (!needs_grad({&q, &k, &v})) return out;
  const bool gq = q.requires_grad(), gk = k.requires_grad(), gv = v.requires_grad();
  return record(out, "scaled_dot_product_attention", {q, k, v},
                [pr, qc, kc, vc, probs, gq, gk, gv](const Tensor& g) {
                  const Tensor gc = last_dim_contiguous(g);
                  Tensor dq = gq ? Tensor::empty(qc.shape(), g.dtype()) : Tensor();
                  Tensor dk = gk ? Tensor::empty(kc.shape(), g.dtype()) : Tensor();
                  Tensor dv = gv ? Tensor::empty(vc.shape(), g.dtype()) : Tensor();
                  visit_floating(g.dtype(), "scaled_dot_product_attention backward", [&](auto tag) {
                    using T = decltype(tag);
                    backward<T>(pr, heads_of<const T>(qc), heads_of<const T>(kc), heads_of<const T>(vc),
                                heads_of<const T>(gc), probs.data<T>(), gq ? heads_of<T>(dq) : Heads<T>{},
                                gk ? heads_of<T>(dk) : Heads<T>{}, gv ? heads_of<T>(dv) : Heads<T>{});
                  });
                  return std::vector<Tensor>{dq, dk, dv};
                });
}

Tensor self_attention_qkv(const Tensor& qkv, int64_t heads, const AttentionOptions& o) {
  constexpr const char* op = "self_attention_qkv";
  if (qkv.dim() != 3 || qkv.size(2) % 3 != 0)
    fail("{}: qkv must be [B, T, 3*C], got {}", op, qkv.shape_string());
  const int64_t B = qkv.size(0), T = qkv.size(1), C = qkv.size(2) / 3;
  if (heads <= 0 || C % heads != 0) fail("{}: {} channels do not split into {} heads", op, C, heads);
  const int64_t D = C / heads;
  Problem pr{B, heads, T, T, D, D, resolve_scale(o.scale, D), o.causal, read_padding(o.key_padding_mask, B, T, op),
             read_prefix_lengths(o, B, T, op)};
  const Tensor x = qkv.detach().contiguous();
  Tensor out = Tensor::empty({B, T, C}, qkv.dtype());
  Tensor probs = Tensor::empty({B, heads, T, T}, qkv.dtype());
  if (out.numel() == 0) return out;
  // q, k, v of head h: columns [h*D, (h+1)*D) of the first, second and third C columns.
  auto views = [T, C, D](auto* base) {
    using P = std::remove_pointer_t<decltype(base)>;
    const int64_t sb = T * 3 * C, sr = 3 * C;
    return std::array<Heads<P>, 3>{Heads<P>{base, sb, D, sr}, Heads<P>{base + C, sb, D, sr},
                                   Heads<P>{base + 2 * C, sb, D, sr}};
  };
  visit_floating(qkv.dtype(), op, [&](auto tag) {
    using E = decltype(tag);
    const auto in = views(static_cast<const E*>(x.data<E>()));
    forward<E>(pr, in[0], in[1], in[2], Heads<E>{out.data<E>(), T * C, D, C}, probs.data<E>());
  });
  if (!needs_grad({&qkv})) return out;
  return record(out, "self_attention_qkv", {qkv}, [pr, x, probs, views, T, C, D](const Tensor& g) {
    const Tensor gc = g.contiguous();
    Tensor dqkv = Tensor::empty(x.shape(), g.dtype());
    visit_floating(g.dtype(), "self_attention_qkv backward", [&](auto tag) {
      using E = decltype(tag);
      const auto in = views(static_cast<const E*>(x.data<E>()));
      const auto d = views(dqkv.data<E>());
      backward<E>(pr, in[0], in[1], in[2], Heads<const E>{gc.data<E>(), T * C, D, C}, probs.data<E>(), d[0], d[1],
                  d[2]);
    });
    return std::vector<Tensor>{dqkv};
  });
}

}  // namespace tessera
