#include "train/image_embeddings.h"

#include <fmt/format.h>
#include <hdf5.h>

#include <filesystem>

#include <map>

#include "autograd/ops/contrastive.h"
#include "autograd/engine.h"
#include "autograd/error.h"
#include "autograd/ops.h"
#include "data/hdf5_util.h"
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

namespace {

using data::h5::Handle;

std::vector<hsize_t> dims_of(hid_t dataset) {
  Handle space(H5Dget_space(dataset));
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(size_t(std::max(rank, 0)));
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

std::string string_attribute(hid_t file, const char* name) {
  std::vector<std::string> v;
  if (H5Aexists(file, name) <= 0) return "";
  Handle attr(H5Aopen(file, name, H5P_DEFAULT));
  return data::h5::read_strings_attribute(attr.get(), v) && v.size() == 1 ? v[0] : "";
}

// Rows [0, n) of a dataset read as `memory_type`.
void read_rows(hid_t dataset, hid_t memory_type, hsize_t n, void* out, const std::string& where) {
  std::vector<hsize_t> dims = dims_of(dataset), offset(dims.size(), 0);
  dims[0] = n;
  Handle file_space(H5Dget_space(dataset));
  Handle memory_space(H5Screate_simple(int(dims.size()), dims.data(), nullptr));
  if (n > 0 && (H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, offset.data(), nullptr, dims.data(), nullptr) < 0 ||
                H5Dread(dataset, memory_type, memory_space.get(), file_space.get(), H5P_DEFAULT, out) < 0))
    fail("{}: cannot read", where);
}

}  // namespace

bool is_embeddings_file(const std::string& path) {
  data::h5::silence_errors();
  if (!std::filesystem::is_regular_file(path) || H5Fis_hdf5(path.c_str()) <= 0) return false;
  Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  return file.valid() && data::h5::link_exists(file.get(), "embeddings") && !data::h5::link_exists(file.get(), "images");
}

EmbeddingsFile read_embeddings_file(const std::string& path, int64_t limit) {
  data::h5::silence_errors();
  Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!file.valid()) fail("{}: not an HDF5 file", path);
  if (!data::h5::link_exists(file.get(), "embeddings")) fail("{}: no dataset 'embeddings' (write one with tessera tokenize)", path);
  Handle e(H5Dopen2(file.get(), "embeddings", H5P_DEFAULT));
  Handle type(H5Dget_type(e.get()));
  const std::vector<hsize_t> dims = dims_of(e.get());
  if (dims.size() != 2 || H5Tget_class(type.get()) != H5T_FLOAT)
    fail("{}: dataset 'embeddings' should be float [N, E], got {} of rank {}", path, data::h5::type_name(type.get()),
         dims.size());
  const auto n = hsize_t(limit < 0 ? int64_t(dims[0]) : std::min<int64_t>(limit, int64_t(dims[0])));
  EmbeddingsFile out;
  out.embeddings = Tensor::empty({int64_t(n), int64_t(dims[1])});
  read_rows(e.get(), H5T_NATIVE_FLOAT, n, out.embeddings.data<float>(), path + ": embeddings");
  if (data::h5::link_exists(file.get(), "labels")) {
    Handle l(H5Dopen2(file.get(), "labels", H5P_DEFAULT));
    Handle ltype(H5Dget_type(l.get()));
    const std::vector<hsize_t> ldims = dims_of(l.get());
    if (ldims.size() != 1 || ldims[0] != dims[0] || H5Tget_class(ltype.get()) != H5T_INTEGER)
      fail("{}: dataset 'labels' should be integer [{}] like the embeddings, got {} of rank {}", path, dims[0],
           data::h5::type_name(ltype.get()), ldims.size());
    out.labels = Tensor::empty({int64_t(n)}, DType::i64);
    read_rows(l.get(), H5T_NATIVE_INT64, n, out.labels.data<int64_t>(), path + ": labels");
    if (H5Aexists(l.get(), "class_names") > 0) {
      Handle names(H5Aopen(l.get(), "class_names", H5P_DEFAULT));
      if (!data::h5::read_strings_attribute(names.get(), out.class_names))
        fail("{}: attribute labels/class_names should hold strings", path);
    }
  }
  out.checkpoint = string_attribute(file.get(), "checkpoint");
  out.model = string_attribute(file.get(), "model");
  return out;
}

}  // namespace tessera::train
