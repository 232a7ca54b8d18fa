#pragma once
// Vector quantizer (VQ-VAE, van den Oord et al. 2017): each D-dim vector of the encoder's output
// is replaced by its nearest entry of a learned K x D codebook; the decoder's gradient reaches the
// encoder through the straight-through estimator. The codebook learns either from the codebook
// loss |sg(z) - e|^2 or from exponential moving averages of the vectors assigned to each code.
// Keeping the whole codebook in use takes two more things: codes initialised from encoder outputs
// (k-means++ and a few Lloyd steps on the first training batch) and dead codes restarted from
// live encoder outputs.
#include <cstdint>
#include <vector>

#include "autograd/random.h"
#include "nn/module.h"

namespace tessera::nn {

struct VectorQuantizerOptions {
  int64_t codebook_size = 512;
  int64_t dim = 64;
  double commitment = 0.25;   // weight of |z - sg(e)|^2
  bool ema = false;           // EMA codebook updates instead of the codebook loss
  double decay = 0.99;        // of the EMA statistics
  double epsilon = 1e-5;      // Laplace smoothing of the EMA cluster sizes
  bool l2_normalize = false;  // compare and emit unit-length vectors (cosine-similarity codes)
  bool kmeans_init = true;    // codebook from k-means++ on the first training batch
  int64_t kmeans_iterations = 10;
  // A code no training batch has picked for this many steps is re-seeded from a random encoder
  // output of the current batch; 0 turns restarts off.
  int64_t dead_code_steps = 0;
};

struct Quantized {
  Tensor quantized;  // [..., D]: the codes, with the straight-through gradient to z
  Tensor indices;    // i64 [...]
  Tensor loss;       // scalar: codebook loss (unless EMA) + commitment * commitment loss
};

// The differentiable part of vector quantization once the codes are chosen; split out so that
// its gradients can be checked in f64. z [M, D], codebook [K, D], indices [M].
struct VqTerms {
  Tensor quantized;        // codebook rows, straight-through to z
  Tensor codebook_loss;    // mean (e - sg(z))^2: moves the codes
  Tensor commitment_loss;  // mean (z - sg(e))^2: keeps z near its code
};
VqTerms vq_terms(const Tensor& z, const Tensor& codebook, const Tensor& indices);

// Each row divided by its Euclidean norm (with a small floor), differentiably.
Tensor l2_normalize_rows(const Tensor& x);

class VectorQuantizer : public Module {
 public:
  VectorQuantizer(const VectorQuantizerOptions& options, Generator& gen);

  // z [..., D]. In training mode this also initialises the codebook on the first call, updates
  // the EMA statistics and restarts dead codes, drawing from `gen`.
  Quantized forward(const Tensor& z, Generator& gen = default_generator());
  // The nearest code of each vector: [..., D] -> i64 [...]. No gradient.
  Tensor codes_to_indices(const Tensor& z) const;
  // [...] integer -> [..., D], the vectors the decoder sees; an index outside the codebook is an error.
  Tensor indices_to_codes(const Tensor& indices) const;

  // The codebook as the decoder sees it (l2-normalised rows if l2_normalize).
  Tensor effective_codebook() const;
  int64_t codebook_size() const { return options_.codebook_size; }
  int64_t dim() const { return options_.dim; }
  const VectorQuantizerOptions& options() const { return options_; }
  // Codes restarted since construction (for logs).
  int64_t restarts() const { return restarts_; }

  Tensor codebook;  // [K, D]: a parameter, or a buffer under EMA

 private:
  void initialise_from(const Tensor& rows, Generator& gen);
  void update_ema(const Tensor& rows, const Tensor& indices);
  void restart_dead_codes(const Tensor& rows, Generator& gen);

  VectorQuantizerOptions options_;
  Tensor initialized_;   // [1]: 1 once the codebook was set from data (checkpointed)
  Tensor idle_steps_;    // [K]: training steps since each code was last picked
  Tensor cluster_size_;  // [K] EMA of assignment counts (EMA only)
  Tensor embed_sum_;     // [K, D] EMA of the sums of assigned vectors (EMA only)
  int64_t restarts_ = 0;
};

// k-means++ seeding followed by `iterations` Lloyd steps on rows [M, D] (f32): returns [k, D].
// With fewer distinct rows than k, the remaining centres are copies of random rows.
Tensor kmeans(const Tensor& rows, int64_t k, int64_t iterations, Generator& gen);

// Codebook statistics from per-code counts.
double codebook_usage(const std::vector<int64_t>& counts);  // share of codes used at least once
double codebook_perplexity(const std::vector<int64_t>& counts);  // exp(entropy of the code frequencies)

}  // namespace tessera::nn
