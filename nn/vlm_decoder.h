#pragma once
// Text generation from a VisionLanguageModel with a key/value cache: the prompt — image tokens,
// BOS, prefix, SEP — goes through the model once (prefill), keeping every layer's keys and values;
// each new token then costs one position through the layers, attending over the cache. The
// results equal a full recomputation of the sequence (tests/nn/test_vlm.cpp checks it).
//
// Rows have prompts of different lengths. They share the cache's columns: the prompts are padded
// on the right to the longest, the pad columns are hidden by a key padding mask, and each row
// keeps its own position counter, so a row's tokens sit at the same sequence positions (and
// learned position embeddings) as in training.
//
// With the cross_attention fusion the image is not in the sequence: each cross-attention layer's
// keys and values of the image tokens are computed once, at the start, and read at every step.
#include <cstdint>
#include <vector>

#include "nn/generation.h"
#include "nn/vlm.h"

namespace tessera::nn {

class VlmDecoder {
 public:
  // image_tokens: each row's projected image tokens, [rows, F x N, width] (model.image_tokens(images);
  // rows that share an image may share them: index_select is cheaper than the tower); undefined
  // for a model with fusion none.
  // prompts: each row's text part up to and including SEP (VlmVocabulary::sequence(prefix, "", false)).
  // Room is made for up to max_new_tokens per row, and never past the model's text_context.
  // Runs without gradients, in whatever mode the model is in (callers set eval mode).
  VlmDecoder(VisionLanguageModel& model, const Tensor& image_tokens, const std::vector<std::vector<int64_t>>& prompts,
             int64_t max_new_tokens);

  int64_t rows() const { return int64_t(next_position_.size()); }
  // f32 [rows, vocab]: each row's next-token logits.
  const Tensor& logits() const { return logits_; }
  // Tokens the row may still take before its text part is full (EOS included).
  int64_t room(int64_t row) const;
  // Feeds one token per row and moves logits() on. Every row must have room.
  void append(const std::vector<int64_t>& ids);
  // Keeps rows `order` (in that order, repeats allowed): beams that continue, or the rows not done.
  void select_rows(const std::vector<int64_t>& order);

 private:
  struct LayerCache {
    Tensor k, v;  // [rows, heads, capacity, head_dim]
  };
  VisionLanguageModel& model_;
  std::vector<LayerCache> cache_;
  std::vector<MultiHeadCrossAttention::KeysValues> cross_cache_;  // per cross-attention layer
  Tensor padding_;                      // u8 [rows, capacity]: 1 at prompt padding
  std::vector<int64_t> next_position_;  // sequence position of each row's next token
  int64_t columns_ = 0;                 // cache columns in use
  int64_t capacity_ = 0;
  int64_t last_position_ = 0;           // N + text_context: no position reaches it
  Tensor logits_;
};

// One generation per row of `image_tokens` ([rows, F x N, width], as VlmDecoder takes them) / `prompts`.
std::vector<Generation> generate(VisionLanguageModel& model, const Tensor& image_tokens,
                                 const std::vector<std::vector<int64_t>>& prompts, const GenerationOptions& options);

}  // namespace tessera::nn
