#pragma once
// Byte-level text tokenizer for the dual encoders' text tower: a string's UTF-8 bytes are its
// tokens (ids 0..255), framed by BOS and EOS and padded with PAD to a fixed context length. No
// vocabulary file, nothing learnt, any language. EOS is the largest id, so the end-of-text
// position is also the row's argmax (CLIP's trick), but the positions are returned explicitly.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "autograd/tensor.h"

namespace tessera::data {

struct TokenizedBatch {
  Tensor ids;        // i64 [N, context]: BOS, bytes..., EOS, PAD...
  Tensor eos_index;  // i64 [N]: position of EOS in each row
  Tensor lengths;    // i64 [N]: tokens before padding (BOS and EOS included)
  int64_t truncated = 0;  // texts cut to fit the context
};

class ByteTokenizer {
 public:
  static constexpr int64_t kPad = 256;
  static constexpr int64_t kBos = 257;
  static constexpr int64_t kEos = 258;
  static constexpr int64_t kVocabSize = 259;

  // context includes BOS and EOS, so it must be at least 2.
  explicit ByteTokenizer(int64_t context);
  int64_t context() const { return context_; }
  int64_t vocab_size() const { return kVocabSize; }

  // Ids of one text, unpadded. Text longer than context - 2 bytes is cut at the last whole
  // UTF-8 character that fits and `*truncated` (if given) is set.
  std::vector<int64_t> encode(std::string_view text, bool* truncated = nullptr) const;
  TokenizedBatch encode_batch(const std::vector<std::string>& texts) const;
  // Bytes between BOS and EOS/PAD; special ids are skipped.
  std::string decode(const std::vector<int64_t>& ids) const;

 private:
  int64_t context_;
};

}  // namespace tessera::data
