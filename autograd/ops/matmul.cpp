// Matrix products through kernels/gemm.h. A transposed operand is passed to GEMM as a flag, not
// copied, so the backward products (g @ B^T, A^T @ g) cost no transposition.
#include "kernels/gemm.h"

#include "autograd/error.h"
#include "autograd/ops.h"

namespace tessera {
namespace {

// One GEMM operand: its data (a batch of row-major matrices at a fixed stride) and whether GEMM
// must read it transposed.
struct Operand {
  Tensor data;
  bool trans = false;
  int64_t ld = 0;
  int64_t batch_stride = 0;
};

// Batch dims can be walked with one stride when they are laid out back to back (or all size 0 stride).
bool flat_batch_stride(const Tensor& t, int64_t* stride) {
  const int64_t batch_rank = t.dim() - 2;
  int64_t expect = -1;
  for (int64_t d = batch_rank - 1; d >= 0; --d) {
    if (t.shape()[d] == 1) continue;
    const int64_t s = t.strides()[d];
    if (expect == -1) {
      *stride = s;
      expect = s * t.shape()[d];
    } else if (s != expect) {
      return false;
    } else {
      expect = s * t.shape()[d];
    }
  }
  if (expect == -1) *stride = 0;
  // all-broadcast batches (stride 0) pass through the loop above with expect == 0
  return true;
}

Operand prepare(const Tensor& t) {
  Operand op;
  const int64_t r = t.dim();
  const int64_t rows = t.shape()[r - 2], cols = t.shape()[r - 1];
  const int64_t sr = t.strides()[r - 2], sc = t.strides()[r - 1];
  int64_t stride = 0;
  const bool batch_ok = flat_batch_stride(t, &stride);
  if (batch_ok && (sc == 1 || cols == 1) && sr >= std::max<int64_t>(cols, 1)) {
    op = {t, false, sr, stride};
  } else if (batch_ok && (sr == 1 || rows == 1) && sc >= std::max<int64_t>(rows, 1)) {
    op = {t, true, sc, stride};
  } else {
    Tensor c = t.detach().contiguous();
    int64_t s = 0;
    flat_batch_stride(c, &s);
    op = {c, false, std::max<int64_t>(cols, 1), s};
  }
  return op;
}

Tensor matmul_forward(const Tensor& a, const Tensor& b) {
  if (a.dim() < 2 || b.dim() < 2)
    fail("matmul: both operands need at least 2 dims, got {} and {}", a.shape_string(), b.shape_string());
  if (a.dtype() != b.dtype() || !is_floating(a.dtype()))
    fail("matmul: operands {} {} and {} {} must share a floating-point dtype", a.shape_string(),
         dtype_name(a.dtype()), b.shape_string(), dtype_name(b.dtype()));
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  if (b.size(-2) != k)
    fail("matmul: inner dimensions differ: {} @ {} ({} vs {})", a.shape_string(), b.shape_string(), k, b.size(-2));
  const Shape batch_a(a.shape().begin(), a.shape().end() - 2), batch_b(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(batch_a, batch_b, "matmul");
  Shape out_shape = batch;
  out_shape.push_back(m);
  out_shape.push_back(n);
  Shape a_full = batch, b_full = batch;
  a_full.insert(a_full.end(), {m, k});
  b_full.insert(b_full.end(), {k, n});
  const int64_t batches = shape_numel(batch);
  const Operand oa = prepare(a.detach().expand(a_full)), ob = prepare(b.detach().expand(b_full));
  Tensor out = Tensor::empty(out_shape, a.dtype());
  kernels::GemmShape s{oa.trans, ob.trans, m, n, k, oa.ld, ob.ld, n};
  if (k == 0) {
    out.fill_(0);
    return out;
  }
  auto run = [&](auto tag) {
    using T = decltype(tag);
    const T* pa = static_cast<const T*>(oa.data.raw_data());
    const T* pb = static_cast<const T*>(ob.data.raw_data());
    if (batches == 1) kernels::gemm(s, T(1), pa, pb, T(0), out.data<T>());
    else kernels::gemm_batched(s, batches, T(1), pa, oa.batch_stride, pb, ob.batch_stride, T(0), out.data<T>(), m * n);
  };
  if (a.dtype() == DType::f32) run(float{});
  else run(double{});
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  Tensor out = matmul_forward(a, b);
  if (!needs_grad({&a, &b})) return out;
  const Tensor sa = a.detach(), sb = b.detach();
  const bool ga = a.requires_grad(), gb = b.requires_grad();
  return record(out, "matmul", {a, b}, [sa, sb, ga, gb](const Tensor& g) {
    return std::vector<Tensor>{ga ? sum_to(matmul_forward(g, sb.transpose(-2, -1)), sa.shape()) : Tensor(),
                               gb ? sum_to(matmul_forward(sa.transpose(-2, -1), g), sb.shape()) : Tensor()};
  });
}

}  // namespace tessera
