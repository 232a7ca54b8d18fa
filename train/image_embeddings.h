#pragma once
// Image embeddings of a data set from any model with nn::ImageToEmbedding — what `tessera
// tokenize` writes for a dual encoder and what `tessera probe` fits a linear classifier on — and
// the files that hold them. Images are normalised as the recipe's evaluation does and visited in
// file order.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "autograd/tensor.h"
#include "data/dataset.h"
#include "nn/capabilities.h"
#include "train/trained_model.h"

namespace tessera::train {

struct EmbeddedImages {
  Tensor embeddings;  // f32 [n, dim]
  Tensor labels;      // i64 [n]; undefined when the data set has none
};
// The first `limit` images of `dataset` (-1: all), batch_size at a time (0: the recipe's
// eval.batch_size). Throws naming `dataset_path` when its images differ in shape from the model's.
EmbeddedImages embed_images(const TrainedModel& model, nn::ImageToEmbedding& embedder,
                            const std::shared_ptr<data::Dataset>& dataset, const std::string& dataset_path,
                            int64_t batch_size, int64_t limit = -1);

// A file of image embeddings as `tessera tokenize` writes it for a dual encoder: `embeddings`
// float [N, E], optional `labels` integer [N] with attribute class_names, attributes checkpoint
// and model. `tessera probe` reads one in place of an image data set.
bool is_embeddings_file(const std::string& path);  // has `embeddings` and no `images`

struct EmbeddingsFile {
  Tensor embeddings;  // f32 [n, E]
  Tensor labels;      // i64 [n]; undefined when the file has none
  std::vector<std::string> class_names;
  std::string checkpoint, model;  // the file's attributes ("" when absent)
};
// The first `limit` rows (-1: all). Throws naming the file and dataset that break the layout above.
EmbeddingsFile read_embeddings_file(const std::string& path, int64_t limit = -1);

}  // namespace tessera::train
