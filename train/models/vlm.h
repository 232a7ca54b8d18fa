#pragma once
// The vision-language model as `tessera` runs it: nn::VisionLanguageModel plus what the recipe and
// the data set add — the objects' class nouns (what "detect" and "count" name), the task mixture,
// and the generation settings — and text in, text out (nn::ImageToText).
#include <string>
#include <vector>

#include "nn/capabilities.h"
#include "nn/vlm.h"

namespace tessera::train {

// Relative frequencies of the training tasks (model.tasks).
struct VlmTaskWeights {
  double caption = 1, detect = 2, answer = 2, count = 1;
};

class VlmModel : public nn::VisionLanguageModel, public nn::ImageToText {
 public:
  VlmModel(const nn::VlmConfig& config, std::vector<std::string> nouns, VlmTaskWeights tasks,
           nn::GenerationOptions generation, Generator& gen);

  std::vector<nn::GeneratedText> generate_text(const Tensor& images, const std::vector<nn::TextPrompt>& prompts,
                                               const nn::GenerationOptions& options) override;
  nn::GenerationOptions default_generation() const override { return generation_; }
  const std::vector<std::string>& object_names() const override { return nouns_; }
  nn::LocationGrid location_grid() const override;

  const VlmTaskWeights& task_weights() const { return tasks_; }

 private:
  std::vector<std::string> nouns_;
  VlmTaskWeights tasks_;
  nn::GenerationOptions generation_;
};

}  // namespace tessera::train
