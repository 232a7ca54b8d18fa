#include "nn/vlm_vocabulary.h"

#include "autograd/error.h"
#include "nn/location_tokens.h"

namespace tessera::nn {

VlmVocabulary::VlmVocabulary(int64_t location_bins) : bins_(location_bins) {
  if (bins_ < 1 || bins_ > 10000) fail("VLM vocabulary: loc_bins must be in [1, 10000], got {}", bins_);
}

std::vector<int64_t> VlmVocabulary::encode(std::string_view text) const {
  std::vector<int64_t> ids;
  ids.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    // "<loc" + 4 digits + ">" naming a bin this vocabulary has.
    if (text.compare(i, 4, "<loc") == 0 && i + 9 <= text.size() && text[i + 8] == '>') {
      int64_t bin = 0;
      bool digits = true;
      for (size_t k = i + 4; k < i + 8; ++k) {
        digits = digits && text[k] >= '0' && text[k] <= '9';
        bin = bin * 10 + (text[k] - '0');
      }
      if (digits && bin < bins_) {
        ids.push_back(location_id(bin));
        i += 9;
        continue;
      }
    }
    ids.push_back(int64_t(static_cast<unsigned char>(text[i])));
    ++i;
  }
  return ids;
}

std::string VlmVocabulary::decode(const std::vector<int64_t>& ids) const {
  std::string text;
  for (int64_t id : ids) {
    if (id >= 0 && id < 256) text += char(static_cast<unsigned char>(id));
    else if (is_location(id)) text += location_token(id - kFirstLocation);
  }
  return text;
}

std::vector<int64_t> VlmVocabulary::sequence(std::string_view prefix, std::string_view suffix, bool with_suffix) const {
  std::vector<int64_t> ids{kBos};
  for (int64_t id : encode(prefix)) ids.push_back(id);
  ids.push_back(kSep);
  if (with_suffix) {
    for (int64_t id : encode(suffix)) ids.push_back(id);
    ids.push_back(kEos);
  }
  return ids;
}

}  // namespace tessera::nn
