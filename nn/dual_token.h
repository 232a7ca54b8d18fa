#pragma once
// LLaMA-VID's dual tokens (Li et al. 2023): each image compressed to a context token, guided by
// the text, and content tokens, pooled from the image — the `dual_token` fusion of the
// vision-language model (issue 18), which puts 2 (or 5) tokens per image in the LM's sequence
// instead of all of its patch tokens.
//   features X [B, N, Wi]: the image tower's patch tokens on a g x g grid (N = g^2)
//   text     [B, T, W]:    the LM's embeddings of the sequence's text; rows' first prompt_lengths[b]
//                          positions (BOS prefix SEP) are the prompt, the rest is never read
//   context: Q = context_query(prompt embeddings) [P, Wi]; A = softmax(Q X^T / sqrt(Wi)) X, one
//            row per prompt token; their mean over the prompt -> context_projector -> one token
//   content: X averaged over each of content_grid^2 equal blocks of the grid (1: the mean of all)
//            -> content_projector -> content_grid^2 tokens
// Out: [B, 1 + content_grid^2, W], the context token first. The projectors start at zero, as the
// prefix fusion's projector: the LM first learns the text, then lets the image in.
#include <memory>
#include <vector>

#include "autograd/random.h"
#include "nn/linear.h"
#include "nn/module.h"

namespace tessera::nn {

class DualTokenCompressor : public Module {
 public:
  // feature_dim Wi, lm_dim W, the features' grid side g (divisible by content_grid).
  DualTokenCompressor(int64_t feature_dim, int64_t lm_dim, int64_t grid, int64_t content_grid, Generator& gen);
  // prompt_lengths: one per row, in [1, T]. Only the first max(prompt_lengths) text positions are read.
  Tensor forward(const Tensor& features, const Tensor& text, const std::vector<int64_t>& prompt_lengths) const;

  int64_t tokens() const { return 1 + content_grid * content_grid; }

  std::shared_ptr<Linear> context_query, context_projector, content_projector;
  int64_t feature_dim, lm_dim, grid, content_grid;
};

}  // namespace tessera::nn
