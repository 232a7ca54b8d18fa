#pragma once
// What text generation is asked for and what it gives back, apart from the model that generates
// (nn/vlm_decoder.h), so that capabilities can name them.
#include <cstdint>
#include <vector>

namespace tessera::nn {

struct GenerationOptions {
  int64_t max_new_tokens = 0;  // 0: up to the text context
  int64_t beam = 1;            // 1: greedy
  double length_penalty = 1;   // beam search ranks finished texts by log p / length^penalty
};

struct Generation {
  std::vector<int64_t> ids;       // generated tokens, EOS excluded
  std::vector<double> log_probs;  // log p of each of `ids` under the model
  double score = 0;               // total log p (EOS included), divided by length^penalty for beams
  bool finished = false;          // ended with EOS (not cut by the length limit)
};

}  // namespace tessera::nn
