#include "train/trained_model.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "train/checkpoint.h"
#include "train/experiment.h"

namespace tessera::train {

Recipe TrainedModel::stored_recipe(const std::string& checkpoint) {
  return Recipe::parse(load_checkpoint_meta(checkpoint).recipe, checkpoint + " (stored recipe)");
}

TrainedModel TrainedModel::load(const std::string& checkpoint, const data::DatasetInfo* data,
                                const std::vector<std::string>& overrides) {
  const Checkpoint c = load_checkpoint(checkpoint);
  TrainedModel m(checkpoint, Recipe::parse(c.meta.recipe, checkpoint + " (stored recipe)", overrides));
  m.type_ = m.recipe_.section("model").string("type");
  m.step_ = c.meta.step;
  if (c.meta.input_shape.size() != 3) fail("checkpoint {}: meta/input_shape should hold [C, H, W]", checkpoint);
  m.shape_.channels = c.meta.input_shape[0], m.shape_.height = c.meta.input_shape[1], m.shape_.width = c.meta.input_shape[2];
  m.shape_.num_classes = c.meta.num_classes;
  if (data) {
    m.check_images(*data, data->path);
    const DataShape from_data = data_shape(*data, m.recipe_);
    m.shape_.class_names = from_data.class_names;
    m.shape_.object_class_names = from_data.object_class_names;
    m.shape_.frames = from_data.frames;
  } else {
    m.shape_.class_names = m.recipe_.section("data").strings("class_names");
  }
  m.shape_.train_path = m.recipe_.section("data").string("train");
  Generator gen(0);  // the initial weights are overwritten below
  m.shape_.weights_follow = true;
  m.module_ = build_model(m.recipe_, m.shape_, gen);
  const std::map<std::string, Tensor> weights = evaluation_weights(c, m.recipe_, checkpoint, &m.uses_ema_);
  try {
    m.module_->load_state(weights);
  } catch (const Error& e) {
    fail("checkpoint {}: {}", checkpoint, e.what());  // load_state names the tensor, not the file
  }
  m.module_->eval();
  return m;
}

std::map<std::string, Tensor> evaluation_weights(const Checkpoint& checkpoint, const Recipe& stored,
                                                 const std::string& path, bool* uses_ema) {
  require_finite_weights(checkpoint, path);
  const bool ema = !checkpoint.ema.empty() && stored.section("eval").boolean("use_ema");
  if (uses_ema) *uses_ema = ema;
  std::map<std::string, Tensor> weights = checkpoint.params;
  if (ema)
    for (const auto& [name, t] : checkpoint.ema) weights[name] = t;
  return weights;
}

void TrainedModel::fail_lacks(const std::string& what) const {
  fail("{} holds a '{}' model, which cannot {}", path_, type_, what);
}

void TrainedModel::check_images(const data::DatasetInfo& info, const std::string& dataset_path) const {
  if (info.channels != shape_.channels || info.height != shape_.height || info.width != shape_.width)
    fail("{} holds {}x{}x{} images (C x H x W) but the model of {} was trained on {}x{}x{}", dataset_path,
         info.channels, info.height, info.width, path_, shape_.channels, shape_.height, shape_.width);
}

data::LoaderOptions TrainedModel::image_loader(int64_t batch_size) const {
  data::LoaderOptions o = loader_options(recipe_, false);
  o.caption_templates.clear();
  o.class_names.clear();
  if (batch_size > 0) o.batch_size = batch_size;
  return o;
}

void TrainedModel::for_each_batch(const std::shared_ptr<data::Dataset>& dataset, const std::string& dataset_path,
                                  int64_t batch_size, int64_t limit,
                                  const std::function<void(const data::Batch&)>& fn) const {
  check_images(dataset->info(), dataset_path);
  const data::Loader loader(dataset, image_loader(batch_size));
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
    fn(batch);
    done += keep;
  }
}

// The images as the model's evaluation saw them: (pixel / 255 - mean) / std per channel, [N, C, H, W]
// ([N, F, C, H, W] for clips).
Tensor normalised_images(const data::Dataset& set, const std::vector<int64_t>& indices, const data::LoaderOptions& o) {
  const data::DatasetInfo& info = set.info();
  std::vector<uint8_t> raw(size_t(set.image_bytes()) * indices.size());
  set.read_images(indices, raw.data());
  // A clip's frames are images in a row: [n, F, C, H, W] is [n F, C, H, W] in memory.
  const int64_t samples = int64_t(indices.size()), f = info.frames, n = samples * f, c = info.channels,
                hw = info.height * info.width;
  Tensor out = f == 1 ? Tensor::empty({n, c, info.height, info.width}) : Tensor::empty({samples, f, c, info.height, info.width});
  float* p = out.data<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch) {
      const float mean = o.mean[size_t(o.mean.size() == 1 ? 0 : ch)], std = o.std[size_t(o.std.size() == 1 ? 0 : ch)];
      for (int64_t k = 0; k < hw; ++k)
        p[(i * c + ch) * hw + k] = (float(raw[size_t((i * hw + k) * c + ch)]) / 255.f - mean) / std;
    }
  return out;
}

// "{objects}" in a prompt becomes the scene's classes (as the model names them), " ; "-joined in
// class order: the evaluation's detect prompt for that scene.
std::string fill_object_prompt(const std::string& prompt, const data::Dataset& set, int64_t index,
                        const std::vector<std::string>& names) {
  const size_t at = prompt.find("{objects}");
  if (at == std::string::npos) return prompt;
  if (!set.info().has_objects) fail("--prompt uses {{objects}} but {} has no objects", set.info().path);
  // In a clip, the objects of the frame the prompt names ("detect in frame 3: {objects}"), or of all frames.
  std::vector<data::ObjectsView> views;
  const int64_t frames = set.info().frames;
  long named = 0;
  if (frames == 1) views.push_back(set.objects(index));
  else if (std::sscanf(prompt.c_str(), "detect in frame %ld", &named) == 1 && named >= 1 && named <= frames)
    views.push_back(set.objects(index, named - 1));
  else
    for (int64_t f = 0; f < frames; ++f) views.push_back(set.objects(index, f));
  std::vector<int32_t> classes;
  for (const data::ObjectsView& v : views) classes.insert(classes.end(), v.classes, v.classes + v.count);
  std::sort(classes.begin(), classes.end());
  classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
  std::string list;
  for (int32_t c : classes) list += (list.empty() ? "" : " ; ") + names.at(size_t(c));
  return prompt.substr(0, at) + list + prompt.substr(at + 9);
}

}  // namespace tessera::train
