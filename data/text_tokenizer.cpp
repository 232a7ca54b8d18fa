#include "data/text_tokenizer.h"

#include "autograd/error.h"

namespace tessera::data {

ByteTokenizer::ByteTokenizer(int64_t context) : context_(context) {
  if (context < 2) fail("ByteTokenizer: context length must be at least 2 (BOS and EOS), got {}", context);
}

std::vector<int64_t> ByteTokenizer::encode(std::string_view text, bool* truncated) const {
  const size_t room = size_t(context_ - 2);
  size_t keep = text.size();
  const bool cut = keep > room;
  if (cut) {
    keep = room;
    // Back up over continuation bytes (10xxxxxx) so that no character is split in half.
    while (keep > 0 && (static_cast<unsigned char>(text[keep]) & 0xC0) == 0x80) --keep;
  }
  if (truncated) *truncated = cut;
  std::vector<int64_t> ids;
  ids.reserve(keep + 2);
  ids.push_back(kBos);
  for (size_t i = 0; i < keep; ++i) ids.push_back(static_cast<unsigned char>(text[i]));
  ids.push_back(kEos);
  return ids;
}

TokenizedBatch ByteTokenizer::encode_batch(const std::vector<std::string>& texts) const {
  const int64_t n = int64_t(texts.size());
  TokenizedBatch out;
  out.ids = Tensor::full({n, context_}, double(kPad), DType::i64);
  out.eos_index = Tensor::empty({n}, DType::i64);
  out.lengths = Tensor::empty({n}, DType::i64);
  int64_t* ids = out.ids.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    bool cut = false;
    const std::vector<int64_t> row = encode(texts[size_t(i)], &cut);
    std::copy(row.begin(), row.end(), ids + i * context_);
    out.lengths.data<int64_t>()[i] = int64_t(row.size());
    out.eos_index.data<int64_t>()[i] = int64_t(row.size()) - 1;
    out.truncated += cut ? 1 : 0;
  }
  return out;
}

std::string ByteTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string text;
  for (int64_t id : ids) {
    if (id == kEos || id == kPad) break;
    if (id >= 0 && id < 256) text.push_back(static_cast<char>(id));
  }
  return text;
}

}  // namespace tessera::data
