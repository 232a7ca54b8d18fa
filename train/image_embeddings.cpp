#include "train/image_embeddings.h"

#include <fmt/format.h>

#include <map>

#include "autograd/contrastive.h"
#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops.h"
#include "nn/vit.h"
#include "train/checkpoint.h"
#include "train/experiment.h"
#include "train/models/clip.h"

namespace tessera::train {

bool ImageEmbedder::handles(const std::string& type) { return type == "clip" || type == "siglip" || type == "vit"; }

ImageEmbedder::ImageEmbedder(const std::string& checkpoint) : path_(checkpoint) {
  const Checkpoint c = load_checkpoint(checkpoint);
  const Recipe recipe = Recipe::parse(c.meta.recipe, checkpoint + " (stored recipe)");
  type_ = recipe.section("model").string("type");
  if (!handles(type_))
    fail("{} holds a '{}' model; image embeddings come from clip, siglip and vit checkpoints", checkpoint, type_);
  if (c.meta.input_shape.size() != 3) fail("checkpoint {}: meta/input_shape should hold [C, H, W]", checkpoint);
  step_ = c.meta.step;
  recipe_text_ = c.meta.recipe;
  channels_ = c.meta.input_shape[0], height_ = c.meta.input_shape[1], width_ = c.meta.input_shape[2];
  const DataShape shape{channels_, height_, width_, c.meta.num_classes, {}};
  Generator gen(0);
  model_ = build_model(recipe, shape, gen);
  // The EMA weights when the run kept them and evaluates with them, as `tessera eval` does.
  std::map<std::string, Tensor> weights = c.params;
  if (!c.ema.empty() && recipe.section("eval").boolean("use_ema"))
    for (const auto& [name, t] : c.ema) weights[name] = t;
  model_->load_state(weights);
  model_->eval();
  if (auto* clip = dynamic_cast<ClipModel*>(model_.get())) dim_ = clip->config().embed_dim;
  else if (auto* vit = dynamic_cast<nn::ViTClassifier*>(model_.get())) dim_ = vit->vit().config().width;
  else fail("{}: the model built from its recipe is neither a dual encoder nor a ViT", checkpoint);
  // Images only: no captions, and the run's renamed classes do not matter here.
  loader_ = loader_options(recipe, false);
  loader_.caption_templates.clear();
  loader_.class_names.clear();
}

std::string ImageEmbedder::description() const {
  if (normalised()) return fmt::format("{} image embedding (joint space, L2-normalised)", type_);
  return "vit pooled embedding (CLS token or mean of the patch tokens, as the model pools)";
}

Tensor ImageEmbedder::embed_batch(const Tensor& images) {
  if (auto* clip = dynamic_cast<ClipModel*>(model_.get())) return l2_normalize_rows(clip->encode_image(images));
  return static_cast<nn::ViTClassifier*>(model_.get())->vit().forward(images).pooled;
}

void ImageEmbedder::for_each_batch(const std::shared_ptr<data::Dataset>& dataset, const std::string& dataset_path,
                                   int64_t batch_size, int64_t limit,
                                   const std::function<void(const data::Batch&, const Tensor&)>& fn) {
  const data::DatasetInfo& info = dataset->info();
  if (info.channels != channels_ || info.height != height_ || info.width != width_)
    fail("{} holds {}x{}x{} images (C x H x W) but the model of {} was trained on {}x{}x{}", dataset_path,
         info.channels, info.height, info.width, path_, channels_, height_, width_);
  data::LoaderOptions lo = loader_;
  if (batch_size > 0) lo.batch_size = batch_size;
  const data::Loader loader(dataset, lo);
  const int64_t n = limit < 0 ? dataset->size() : std::min(limit, dataset->size());
  NoGradGuard no_grad;
  int64_t done = 0;
  for (int64_t b = 0; b < loader.batches_per_epoch() && done < n; ++b) {
    data::Batch batch = loader.make_batch(0, b);
    const int64_t keep = std::min(batch.images.size(0), n - done);
    if (keep < batch.images.size(0)) {  // the last batch under a limit
      batch.images = batch.images.slice(0, 0, keep).contiguous();
      if (batch.labels.defined()) batch.labels = batch.labels.slice(0, 0, keep).contiguous();
      batch.indices.resize(size_t(keep));
    }
    const Tensor e = embed_batch(batch.images).contiguous();
    fn(batch, e);
    done += keep;
  }
}

ImageEmbedder::Embedded ImageEmbedder::embed(const std::shared_ptr<data::Dataset>& dataset, const std::string& dataset_path,
                                             int64_t batch_size, int64_t limit) {
  std::vector<Tensor> embeddings, labels;
  for_each_batch(dataset, dataset_path, batch_size, limit, [&](const data::Batch& batch, const Tensor& e) {
    embeddings.push_back(e);
    if (batch.labels.defined()) labels.push_back(batch.labels);
  });
  Embedded out;
  out.embeddings = embeddings.empty() ? Tensor::zeros({0, dim_}) : concat(embeddings, 0);
  if (!labels.empty() && labels.size() == embeddings.size()) out.labels = concat(labels, 0);
  return out;
}

}  // namespace tessera::train
