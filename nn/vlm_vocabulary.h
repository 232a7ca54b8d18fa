#pragma once
// The vision-language model's token vocabulary: UTF-8 bytes, four special tokens, and PaliGemma's
// location tokens, one per bin of a box coordinate:
//   0..255 bytes | 256 PAD | 257 BOS | 258 EOS | 259 SEP | 260 + k  <loc{k:04}>, k < bins
// PAD, BOS and EOS are data::ByteTokenizer's ids, so a byte tokenizer's text is valid here too.
// A text is encoded byte by byte except that "<locNNNN>" with NNNN < bins becomes one location
// token (so a detection target is 4 tokens per box, not 36 bytes); decoding writes it back.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::nn {

class VlmVocabulary {
 public:
  static constexpr int64_t kPad = 256;
  static constexpr int64_t kBos = 257;
  static constexpr int64_t kEos = 258;
  static constexpr int64_t kSep = 259;
  static constexpr int64_t kFirstLocation = 260;

  explicit VlmVocabulary(int64_t location_bins);
  int64_t size() const { return kFirstLocation + bins_; }
  int64_t location_bins() const { return bins_; }

  bool is_location(int64_t id) const { return id >= kFirstLocation && id < size(); }
  int64_t location_id(int64_t bin) const { return kFirstLocation + bin; }

  std::vector<int64_t> encode(std::string_view text) const;
  // Bytes and location tokens back to text; PAD, BOS, EOS and SEP are dropped, ids outside the
  // vocabulary too (a model cannot produce them, but a caller might pass them).
  std::string decode(const std::vector<int64_t>& ids) const;
  // The text part of a sequence: BOS, the prefix, SEP, then the suffix and EOS when `with_suffix`
  // (training), or nothing after SEP (a generation prompt).
  std::vector<int64_t> sequence(std::string_view prefix, std::string_view suffix, bool with_suffix) const;

 private:
  int64_t bins_;
};

}  // namespace tessera::nn
