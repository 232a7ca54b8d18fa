#pragma once
// The image embeddings a checkpoint gives a data set — what `tessera tokenize` writes for a dual
// encoder and what `tessera probe` fits a linear classifier on:
//   clip, siglip  the image tower's joint-space embedding, L2-normalised: [N, embed_dim]
//   vit           the pooled embedding (CLS token or mean of the patch tokens): [N, width]
// Images are normalised as the recipe's evaluation does and visited in file order.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/tensor.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "nn/module.h"

namespace tessera::train {

class ImageEmbedder {
 public:
  // Loads the checkpoint (EMA weights when its recipe evaluates with them) in eval mode. Throws
  // naming the file when it holds a model without an image embedding.
  explicit ImageEmbedder(const std::string& checkpoint);

  static bool handles(const std::string& model_type);  // clip, siglip, vit

  const std::string& checkpoint() const { return path_; }
  const std::string& model_type() const { return type_; }
  int64_t step() const { return step_; }
  const std::string& recipe_text() const { return recipe_text_; }  // the run's resolved recipe
  int64_t dim() const { return dim_; }
  bool normalised() const { return type_ != "vit"; }
  // What the embedding is, for messages and file attributes.
  std::string description() const;

  // Runs the first `limit` images of `dataset` (-1: all) through the model, batch_size at a time
  // (0: the recipe's eval.batch_size), handing each batch and its embeddings [B, dim] to `fn` in
  // order. Throws naming `dataset_path` when its images differ in shape from the model's.
  void for_each_batch(const std::shared_ptr<data::Dataset>& dataset, const std::string& dataset_path, int64_t batch_size,
                      int64_t limit, const std::function<void(const data::Batch&, const Tensor&)>& fn);

  struct Embedded {
    Tensor embeddings;  // f32 [n, dim]
    Tensor labels;      // i64 [n]; undefined when the data set has none
  };
  // All at once, in memory.
  Embedded embed(const std::shared_ptr<data::Dataset>& dataset, const std::string& dataset_path, int64_t batch_size,
                 int64_t limit = -1);

 private:
  Tensor embed_batch(const Tensor& images);

  std::string path_, type_, recipe_text_;
  int64_t step_ = 0, dim_ = 0;
  int64_t channels_ = 0, height_ = 0, width_ = 0;
  std::shared_ptr<nn::Module> model_;
  data::LoaderOptions loader_;
};

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
