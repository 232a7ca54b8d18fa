#pragma once
// The dual encoder as `tessera` runs it: nn::DualEncoder plus what the commands need around it —
// the data set's class names and the zero-shot prompt templates (from the recipe), and the byte
// tokenizer that turns captions and prompts into ids.
#include <string>
#include <vector>

#include "data/text_tokenizer.h"
#include "nn/contrastive_metrics.h"
#include "nn/dual_encoder.h"

namespace tessera::train {

class ClipModel : public nn::DualEncoder {
 public:
  ClipModel(const nn::DualEncoderConfig& config, std::vector<std::string> class_names,
            std::vector<std::string> templates, Generator& gen);

  // Every template filled with every name, name-major: [names x templates].
  std::vector<std::string> prompts(const std::vector<std::string>& names) const;
  // Tokenized and encoded: [N, embed_dim], not normalised.
  Tensor embed_texts(const std::vector<std::string>& texts);
  // Prompt-ensemble class embeddings [names, embed_dim], unit rows.
  Tensor class_embeddings(const std::vector<std::string>& names);

  std::vector<std::string> class_names;
  std::vector<std::string> zero_shot_templates;
  data::ByteTokenizer tokenizer;
};

}  // namespace tessera::train

namespace tessera::train {

// A dual encoder rebuilt from a checkpoint's stored recipe and weights (EMA weights when the run
// evaluates with them), in eval mode. Throws naming the file when it holds another kind of model.
std::shared_ptr<ClipModel> load_clip_checkpoint(const std::string& path);

}  // namespace tessera::train
