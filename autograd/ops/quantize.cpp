// Quantizer ops: nearest-code search through GEMM, codebook lookup with a scatter-add backward,
// and the straight-through estimators.
#include "autograd/ops/quantize.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "kernels/gemm.h"
#include "kernels/threads.h"

namespace tessera {
namespace {

void check_float(const Tensor& t, const char* op, const char* what) {
  if (!t.defined()) fail("{}: {} is undefined", op, what);
  if (!is_floating(t.dtype())) fail("{}: {} must be f32 or f64, got {} {}", op, what, dtype_name(t.dtype()), t.shape_string());
}

// Index as i64, whatever integer type it is stored in.
int64_t index_at(const Tensor& indices, int64_t i) {
  if (indices.dtype() == DType::i64) return indices.data<int64_t>()[i];
  return indices.data<int32_t>()[i];
}

void check_indices(const Tensor& indices, int64_t codebook_size, const char* op) {
  if (indices.dtype() != DType::i64 && indices.dtype() != DType::i32)
    fail("{}: indices must be i64 or i32, got {} {}", op, dtype_name(indices.dtype()), indices.shape_string());
  const int64_t n = indices.numel();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = index_at(indices, i);
    if (k < 0 || k >= codebook_size)
      fail("{}: index {} at position {} is outside the codebook [0, {})", op, k, i, codebook_size);
  }
}

// Rows searched per GEMM: bounds the [rows, K] score block to a few MB.
constexpr int64_t kRowBlock = 2048;

template <class T>
void nearest_rows(const T* z, const T* e, int64_t m, int64_t k, int64_t d, int64_t* out, T* dist) {
  std::vector<T> norms(k);
  for (int64_t j = 0; j < k; ++j) {
    T s = 0;
    for (int64_t c = 0; c < d; ++c) s += e[j * d + c] * e[j * d + c];
    norms[j] = s;
  }
  std::vector<T> scores(std::min(m, kRowBlock) * k);
  for (int64_t r0 = 0; r0 < m; r0 += kRowBlock) {
    const int64_t rows = std::min(kRowBlock, m - r0);
    // scores = z_block @ e^T
    kernels::GemmShape s{false, true, rows, k, d, d, d, k};
    kernels::gemm_full_precision(s, T(1), z + r0 * d, e, T(0), scores.data());
    kernels::parallel_for(rows, 64, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const T* row = scores.data() + r * k;
        int64_t best = 0;
        T best_value = std::numeric_limits<T>::infinity();
        for (int64_t j = 0; j < k; ++j) {
          const T v = norms[j] - 2 * row[j];
          if (v < best_value) best_value = v, best = j;
        }
        out[r0 + r] = best;
        if (dist) {
          const T* zr = z + (r0 + r) * d;
          T zz = 0;
          for (int64_t c = 0; c < d; ++c) zz += zr[c] * zr[c];
          dist[r0 + r] = std::max(T(0), zz + best_value);
        }
      }
    });
  }
}

}  // namespace

Tensor nearest_code(const Tensor& z, const Tensor& codebook, Tensor* squared_distance) {
  check_float(z, "nearest_code", "z");
  check_float(codebook, "nearest_code", "codebook");
  if (z.dim() != 2 || codebook.dim() != 2 || z.size(1) != codebook.size(1) || z.dtype() != codebook.dtype())
    fail("nearest_code: expects z [M, D] and codebook [K, D] of one dtype, got z {} {} and codebook {} {}",
         z.shape_string(), dtype_name(z.dtype()), codebook.shape_string(), dtype_name(codebook.dtype()));
  const int64_t m = z.size(0), k = codebook.size(0), d = z.size(1);
  if (k == 0) fail("nearest_code: the codebook is empty ({})", codebook.shape_string());
  const Tensor zc = z.detach().contiguous(), ec = codebook.detach().contiguous();
  Tensor out = Tensor::empty({m}, DType::i64);
  Tensor dist;
  if (squared_distance) dist = Tensor::empty({m}, z.dtype());
  if (m > 0) {
    visit_floating(z.dtype(), "nearest_code", [&](auto tag) {
      using T = decltype(tag);
      nearest_rows<T>(zc.data<T>(), ec.data<T>(), m, k, d, out.data<int64_t>(), dist.defined() ? dist.data<T>() : nullptr);
    });
  }
  if (squared_distance) *squared_distance = dist;
  return out;
}

namespace {
Tensor lookup_forward(const Tensor& codebook, const Tensor& indices) {
  const int64_t k = codebook.size(0), d = codebook.size(1);
  const Tensor ec = codebook.detach().contiguous(), ic = indices.contiguous();
  Shape shape = indices.shape();
  shape.push_back(d);
  Tensor out = Tensor::empty(shape, codebook.dtype());
  const int64_t n = ic.numel();
  visit_floating(codebook.dtype(), "lookup_codes", [&](auto tag) {
    using T = decltype(tag);
    const T* e = ec.data<T>();
    T* o = out.data<T>();
    for (int64_t i = 0; i < n; ++i) {
      const T* src = e + index_at(ic, i) * d;
      std::copy(src, src + d, o + i * d);
    }
  });
  (void)k;
  return out;
}

Tensor lookup_backward(const Tensor& grad, const Tensor& indices, int64_t k, int64_t d) {
  Tensor g = grad.contiguous();
  Tensor out = Tensor::zeros({k, d}, grad.dtype());
  const int64_t n = indices.numel();
  visit_floating(grad.dtype(), "lookup_codes backward", [&](auto tag) {
    using T = decltype(tag);
    const T* pg = g.data<T>();
    T* o = out.data<T>();
    for (int64_t i = 0; i < n; ++i) {
      T* dst = o + index_at(indices, i) * d;
      const T* src = pg + i * d;
      for (int64_t c = 0; c < d; ++c) dst[c] += src[c];
    }
  });
  return out;
}
}  // namespace

Tensor lookup_codes(const Tensor& codebook, const Tensor& indices) {
  check_float(codebook, "lookup_codes", "codebook");
  if (codebook.dim() != 2) fail("lookup_codes: codebook must be [K, D], got {}", codebook.shape_string());
  const Tensor ic = indices.contiguous();
  const int64_t k = codebook.size(0), d = codebook.size(1);
  check_indices(ic, k, "lookup_codes");
  Tensor out = lookup_forward(codebook, ic);
  if (!needs_grad({&codebook})) return out;
  return record(out, "lookup_codes", {codebook}, [ic, k, d](const Tensor& g) {
    return std::vector<Tensor>{lookup_backward(g, ic, k, d)};
  });
}

Tensor straight_through(const Tensor& x, const Tensor& value) {
  check_float(x, "straight_through", "x");
  check_float(value, "straight_through", "value");
  if (x.shape() != value.shape() || x.dtype() != value.dtype())
    fail("straight_through: x {} {} and value {} {} must have one shape and dtype", x.shape_string(),
         dtype_name(x.dtype()), value.shape_string(), dtype_name(value.dtype()));
  // Shares value's storage when it is contiguous: nothing writes to either in place.
  Tensor out = value.detach().contiguous();
  if (!needs_grad({&x})) return out;
  return record(out, "straight_through", {x}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Tensor round_ste(const Tensor& x) {
  check_float(x, "round_ste", "x");
  const Tensor xc = x.detach().contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  const int64_t n = x.numel();
  visit_floating(x.dtype(), "round_ste", [&](auto tag) {
    using T = decltype(tag);
    const T* px = xc.data<T>();
    T* po = out.data<T>();
    for (int64_t i = 0; i < n; ++i) po[i] = std::nearbyint(px[i]);  // default rounding mode: halves to even
  });
  if (!needs_grad({&x})) return out;
  return record(out, "round_ste", {x}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

std::vector<int64_t> code_counts(const Tensor& indices, int64_t codebook_size) {
  const Tensor ic = indices.contiguous();
  check_indices(ic, codebook_size, "code_counts");
  std::vector<int64_t> counts(codebook_size, 0);
  const int64_t n = ic.numel();
  for (int64_t i = 0; i < n; ++i) ++counts[index_at(ic, i)];
  return counts;
}

}  // namespace tessera
