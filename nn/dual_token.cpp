#include "nn/dual_token.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/error.h"
#include "autograd/ops.h"
#include "nn/init.h"

namespace tessera::nn {

DualTokenCompressor::DualTokenCompressor(int64_t feature_dim_, int64_t lm_dim_, int64_t grid_, int64_t content_grid_,
                                         Generator& gen)
    : feature_dim(feature_dim_), lm_dim(lm_dim_), grid(grid_), content_grid(content_grid_) {
  if (feature_dim <= 0 || lm_dim <= 0 || grid <= 0)
    fail("dual tokens: sizes must be positive (features {}, lm {}, grid {})", feature_dim, lm_dim, grid);
  if (content_grid < 1 || grid % content_grid != 0)
    fail("dual tokens: content_grid {} must divide the image's {}x{} token grid", content_grid, grid, grid);
  context_query = register_module("context_query", std::make_shared<Linear>(lm_dim, feature_dim, true, gen));
  context_projector = register_module("context_projector", std::make_shared<Linear>(feature_dim, lm_dim, true, gen));
  content_projector = register_module("content_projector", std::make_shared<Linear>(feature_dim, lm_dim, true, gen));
  init::normal_(context_query->weight, 0, std::pow(double(lm_dim), -0.5), gen);
  init::zeros_(context_query->bias);
  for (const auto& p : {context_projector, content_projector}) {
    init::zeros_(p->weight);
    init::zeros_(p->bias);
  }
}

Tensor DualTokenCompressor::forward(const Tensor& features, const Tensor& text,
                                    const std::vector<int64_t>& prompt_lengths) const {
  if (!features.defined() || features.dim() != 3 || features.size(1) != grid * grid || features.size(2) != feature_dim)
    fail("dual tokens: image features must be [B, {}, {}], got {}", grid * grid, feature_dim,
         features.defined() ? features.shape_string() : "undefined");
  const int64_t b = features.size(0);
  if (!text.defined() || text.dim() != 3 || text.size(0) != b || text.size(2) != lm_dim)
    fail("dual tokens: text embeddings must be [{}, T, {}], got {}", b, lm_dim,
         text.defined() ? text.shape_string() : "undefined");
  if (int64_t(prompt_lengths.size()) != b) fail("dual tokens: {} prompt lengths for {} rows", prompt_lengths.size(), b);
  int64_t t = 0;  // the longest prompt: the positions after it are never read
  for (int64_t r = 0; r < b; ++r) {
    const int64_t p = prompt_lengths[size_t(r)];
    if (p < 1 || p > text.size(1))
      fail("dual tokens: row {} has a prompt of {} positions, outside [1, {}]", r, p, text.size(1));
    t = std::max(t, p);
  }
  // Each row's mean over its prompt positions, as a [B, 1, t] weight row (zero past the prompt, so
  // nothing the model writes after it can reach the context token).
  std::vector<double> weights(size_t(b * t), 0.0);
  for (int64_t r = 0; r < b; ++r) {
    const int64_t p = prompt_lengths[size_t(r)];
    for (int64_t i = 0; i < p; ++i) weights[size_t(r * t + i)] = 1.0 / double(p);
  }
  const Tensor queries = context_query->forward(text.slice(1, 0, t)).unsqueeze(1);  // [B, 1, t, Wi]: one head
  const Tensor x = features.unsqueeze(1);                            // [B, 1, N, Wi]
  const Tensor attended = scaled_dot_product_attention(queries, x, x).select(1, 0);  // [B, T, Wi]
  const Tensor mean_weights = Tensor::from_vector(weights, {b, 1, t}).to(attended.dtype());
  const Tensor context = context_projector->forward(matmul(mean_weights, attended));  // [B, 1, W]
  // Content: block means of the grid, blocks in row-major order.
  const int64_t c = content_grid, s = grid / c;
  const Tensor blocks = mean(features.reshape({b, c, s, c, s, feature_dim}), {2, 4});  // [B, c, c, Wi]
  const Tensor content = content_projector->forward(blocks.reshape({b, c * c, feature_dim}));
  return concat({context, content}, 1);
}

}  // namespace tessera::nn
