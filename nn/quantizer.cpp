#include "nn/quantizer.h"

#include <cmath>
#include <limits>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops/losses.h"
#include "autograd/ops.h"
#include "autograd/ops/quantize.h"
#include "kernels/threads.h"
#include "nn/init.h"

namespace tessera::nn {

VqTerms vq_terms(const Tensor& z, const Tensor& codebook, const Tensor& indices) {
  const Tensor rows = lookup_codes(codebook, indices);
  return {straight_through(z, rows), mse_loss(rows, z.detach()), mse_loss(z, rows.detach())};
}

Tensor l2_normalize_rows(const Tensor& x) {
  const Tensor squared_norm = sum(square(x), {-1}, true);
  return x * rsqrt(clamp(squared_norm, 1e-12, std::numeric_limits<double>::infinity()));
}

VectorQuantizer::VectorQuantizer(const VectorQuantizerOptions& options, Generator& gen) : options_(options) {
  const auto& o = options_;
  if (o.codebook_size < 1 || o.dim < 1)
    fail("VectorQuantizer: codebook_size ({}) and dim ({}) must be positive", o.codebook_size, o.dim);
  if (o.commitment < 0) fail("VectorQuantizer: commitment must be >= 0, got {}", o.commitment);
  if (o.ema && !(o.decay > 0 && o.decay < 1)) fail("VectorQuantizer: decay must be in (0, 1), got {}", o.decay);
  if (o.epsilon <= 0) fail("VectorQuantizer: epsilon must be > 0, got {}", o.epsilon);
  if (o.kmeans_iterations < 0 || o.dead_code_steps < 0)
    fail("VectorQuantizer: kmeans_iterations ({}) and dead_code_steps ({}) must be >= 0", o.kmeans_iterations,
         o.dead_code_steps);
  // Before any data is seen, codes are small and spread, as the original VQ-VAE's U(-1/K, 1/K).
  Tensor book = Tensor::empty({o.codebook_size, o.dim});
  init::uniform_(book, -1.0 / double(o.codebook_size), 1.0 / double(o.codebook_size), gen);
  codebook = o.ema ? register_buffer("codebook", book) : register_parameter("codebook", book);
  initialized_ = register_buffer("initialized", Tensor::zeros({1}));
  idle_steps_ = register_buffer("idle_steps", Tensor::zeros({o.codebook_size}));
  if (o.ema) {
    cluster_size_ = register_buffer("cluster_size", Tensor::ones({o.codebook_size}));
    embed_sum_ = register_buffer("embed_sum", book.clone());
  }
}

Tensor VectorQuantizer::effective_codebook() const {
  return options_.l2_normalize ? nn::l2_normalize_rows(codebook) : codebook;
}

Quantized VectorQuantizer::forward(const Tensor& z, Generator& gen) {
  const int64_t d = options_.dim;
  if (z.dim() < 1 || z.size(-1) != d)
    fail("VectorQuantizer: input {} must end in the code dimension {}", z.shape_string(), d);
  if (z.dtype() != codebook.dtype())
    fail("VectorQuantizer: input is {} but the codebook is {}", dtype_name(z.dtype()), dtype_name(codebook.dtype()));
  Tensor rows = z.reshape({-1, d});
  if (options_.l2_normalize) rows = nn::l2_normalize_rows(rows);
  const bool training = is_training() && rows.size(0) > 0;
  // Changes to the codebook happen before it enters this step's graph, so no saved tensor changes.
  if (training) {
    NoGradGuard no_grad;
    if (options_.kmeans_init && initialized_.item() == 0) initialise_from(rows.detach(), gen);
    else if (options_.dead_code_steps > 0) restart_dead_codes(rows.detach(), gen);
  }
  const Tensor book = effective_codebook();
  const Tensor indices = nearest_code(rows.detach(), book.detach());
  VqTerms terms = vq_terms(rows, book, indices);
  Tensor loss = terms.commitment_loss * options_.commitment;
  if (!options_.ema) loss = loss + terms.codebook_loss;
  if (training) {
    NoGradGuard no_grad;
    // Idle counters: +1 for every code, reset for the codes this batch picked.
    const std::vector<int64_t> counts = code_counts(indices, options_.codebook_size);
    float* idle = idle_steps_.data<float>();
    for (int64_t k = 0; k < options_.codebook_size; ++k) idle[k] = counts[k] > 0 ? 0.0f : idle[k] + 1.0f;
    if (options_.ema) update_ema(rows.detach(), indices);
  }
  Shape index_shape(z.shape().begin(), z.shape().end() - 1);
  Shape out_shape = z.shape();
  return {terms.quantized.reshape(out_shape), indices.reshape(index_shape), loss};
}

Tensor VectorQuantizer::codes_to_indices(const Tensor& z) const {
  const int64_t d = options_.dim;
  if (z.dim() < 1 || z.size(-1) != d)
    fail("VectorQuantizer: input {} must end in the code dimension {}", z.shape_string(), d);
  NoGradGuard no_grad;
  Tensor rows = z.detach().reshape({-1, d});
  if (options_.l2_normalize) rows = nn::l2_normalize_rows(rows);
  Shape index_shape(z.shape().begin(), z.shape().end() - 1);
  return nearest_code(rows, effective_codebook().detach()).reshape(index_shape);
}

Tensor VectorQuantizer::indices_to_codes(const Tensor& indices) const {
  NoGradGuard no_grad;
  return lookup_codes(effective_codebook().detach(), indices);
}

void VectorQuantizer::initialise_from(const Tensor& rows, Generator& gen) {
  Tensor centres = kmeans(rows.to(DType::f32), options_.codebook_size, options_.kmeans_iterations, gen);
  codebook.copy_(centres);
  if (options_.ema) {
    cluster_size_.fill_(1);
    embed_sum_.copy_(centres);
  }
  idle_steps_.fill_(0);
  initialized_.fill_(1);
}

void VectorQuantizer::update_ema(const Tensor& rows, const Tensor& indices) {
  const int64_t k_count = options_.codebook_size, d = options_.dim, m = rows.size(0);
  const float decay = float(options_.decay), eps = float(options_.epsilon);
  const Tensor r = rows.to(DType::f32).contiguous();
  const float* x = r.data<float>();
  const int64_t* idx = indices.data<int64_t>();
  std::vector<double> counts(k_count, 0), sums(k_count * d, 0);
  for (int64_t i = 0; i < m; ++i) {
    counts[idx[i]] += 1;
    for (int64_t c = 0; c < d; ++c) sums[idx[i] * d + c] += x[i * d + c];
  }
  float* cs = cluster_size_.data<float>();
  float* es = embed_sum_.data<float>();
  float* book = codebook.data<float>();
  double total = 0;
  for (int64_t k = 0; k < k_count; ++k) {
    cs[k] = decay * cs[k] + (1 - decay) * float(counts[k]);
    total += cs[k];
  }
  for (int64_t k = 0; k < k_count; ++k) {
    // Laplace smoothing keeps a code that lost its vectors from dividing by zero.
    const double smoothed = (cs[k] + eps) / (total + k_count * eps) * total;
    for (int64_t c = 0; c < d; ++c) {
      float& e = es[k * d + c];
      e = decay * e + (1 - decay) * float(sums[k * d + c]);
      book[k * d + c] = float(e / smoothed);
    }
  }
}

void VectorQuantizer::restart_dead_codes(const Tensor& rows, Generator& gen) {
  const int64_t k_count = options_.codebook_size, d = options_.dim, m = rows.size(0);
  float* idle = idle_steps_.data<float>();
  std::vector<int64_t> dead;
  for (int64_t k = 0; k < k_count; ++k)
    if (idle[k] >= float(options_.dead_code_steps)) dead.push_back(k);
  if (dead.empty()) return;
  const Tensor r = rows.to(DType::f32).contiguous();
  const std::vector<int64_t> picks = randint(0, m, {int64_t(dead.size())}, gen).to_vector<int64_t>();
  float* book = codebook.data<float>();
  for (size_t i = 0; i < dead.size(); ++i) {
    const float* src = r.data<float>() + picks[i] * d;
    std::copy(src, src + d, book + dead[i] * d);
    if (options_.ema) {
      cluster_size_.data<float>()[dead[i]] = 1;
      std::copy(src, src + d, embed_sum_.data<float>() + dead[i] * d);
    }
    idle[dead[i]] = 0;
  }
  restarts_ += int64_t(dead.size());
}

Tensor kmeans(const Tensor& rows, int64_t k, int64_t iterations, Generator& gen) {
  if (rows.dim() != 2 || rows.dtype() != DType::f32 || rows.size(0) == 0 || k < 1)
    fail("kmeans: expects non-empty f32 rows [M, D] and k >= 1, got {} {} and k = {}", rows.shape_string(),
         dtype_name(rows.dtype()), k);
  const Tensor xr = rows.contiguous();
  const int64_t m = xr.size(0), d = xr.size(1);
  const float* x = xr.data<float>();
  Tensor centres = Tensor::empty({k, d});
  float* c = centres.data<float>();
  const std::vector<double> u = rand({2 * k}, gen, DType::f64).to_vector<double>();
  auto pick_uniform = [&](double v) { return std::min<int64_t>(int64_t(v * double(m)), m - 1); };

  // k-means++: each next centre is a row drawn with probability proportional to its squared
  // distance from the centres chosen so far.
  std::vector<double> dist(m, std::numeric_limits<double>::infinity());
  int64_t chosen = pick_uniform(u[0]);
  for (int64_t j = 0; j < k; ++j) {
    if (j > 0) {
      double total = 0;
      for (int64_t i = 0; i < m; ++i) total += dist[i];
      if (total <= 0) {
        chosen = pick_uniform(u[2 * j + 1]);  // every row is already a centre: copy a random one
      } else {
        double target = u[2 * j] * total;
        chosen = m - 1;
        for (int64_t i = 0; i < m; ++i) {
          target -= dist[i];
          if (target < 0) {
            chosen = i;
            break;
          }
        }
      }
    }
    std::copy(x + chosen * d, x + chosen * d + d, c + j * d);
    const float* cj = c + j * d;
    kernels::parallel_for(m, 256, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        double s = 0;
        for (int64_t t = 0; t < d; ++t) {
          const double diff = double(x[i * d + t]) - cj[t];
          s += diff * diff;
        }
        dist[i] = std::min(dist[i], s);
      }
    });
  }

  // Lloyd steps; a centre left without rows keeps its place.
  std::vector<double> sums(k * d);
  std::vector<int64_t> counts(k);
  for (int64_t it = 0; it < iterations; ++it) {
    const Tensor assignment = nearest_code(xr, centres);
    const int64_t* a = assignment.data<int64_t>();
    std::fill(sums.begin(), sums.end(), 0.0);
    std::fill(counts.begin(), counts.end(), 0);
    for (int64_t i = 0; i < m; ++i) {
      ++counts[a[i]];
      for (int64_t t = 0; t < d; ++t) sums[a[i] * d + t] += x[i * d + t];
    }
    for (int64_t j = 0; j < k; ++j)
      if (counts[j] > 0)
        for (int64_t t = 0; t < d; ++t) c[j * d + t] = float(sums[j * d + t] / double(counts[j]));
  }
  return centres;
}

double codebook_usage(const std::vector<int64_t>& counts) {
  if (counts.empty()) return 0;
  int64_t used = 0;
  for (int64_t n : counts) used += n > 0;
  return double(used) / double(counts.size());
}

double codebook_perplexity(const std::vector<int64_t>& counts) {
  double total = 0;
  for (int64_t n : counts) total += double(n);
  if (total <= 0) return 0;
  double entropy = 0;
  for (int64_t n : counts)
    if (n > 0) {
      const double p = double(n) / total;
      entropy -= p * std::log(p);
    }
  return std::exp(entropy);
}

}  // namespace tessera::nn
