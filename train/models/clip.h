#pragma once
// The dual encoder as `tessera` runs it: nn::DualEncoder plus what turns text into its input —
// the byte tokenizer — and what the recipe adds: the data set's class names and the zero-shot
// prompt templates. With the tokenizer it can embed texts (nn::TextToEmbedding); images it
// embeds as nn::DualEncoder does (nn::ImageToEmbedding).
#include <string>
#include <vector>

#include "data/text_tokenizer.h"
#include "nn/capabilities.h"
#include "nn/dual_encoder.h"

namespace tessera::train {

class ClipModel : public nn::DualEncoder, public nn::TextToEmbedding {
 public:
  ClipModel(const nn::DualEncoderConfig& config, std::vector<std::string> class_names,
            std::vector<std::string> templates, Generator& gen);

  // Tokenized and encoded: [N, embed_dim], not normalised.
  Tensor embed_texts(const std::vector<std::string>& texts) override;
  std::vector<std::string> zero_shot_templates() const override { return templates_; }
  // Prompt-ensemble class embeddings [names, embed_dim] of the recipe's templates, unit rows.
  Tensor class_embeddings(const std::vector<std::string>& names);

  std::vector<std::string> class_names;  // the data set's (as the recipe renames them)
  data::ByteTokenizer tokenizer;

 private:
  std::vector<std::string> templates_;
};

}  // namespace tessera::train
