// `tessera tokenize CKPT IN.h5 OUT.h5`: the soft tokens of every image of a data set, from a
// trained model. For a ViT checkpoint OUT.h5 holds
//   tokens  float32 [N, patches, width]  the patch tokens after the final norm (CLS excluded)
//   pooled  float32 [N, width]           the pooled embedding (CLS token or mean of the tokens)
//   labels  int64 [N]                    copied from IN.h5 when it has labels (attribute class_names)
// with attributes `checkpoint`, `step` and `model` on the file. For a CLIP/SigLIP checkpoint it holds
//   embeddings  float32 [N, embed_dim]  the image tower's joint-space embeddings, L2-normalised
//   labels      int64 [N]               with attribute class_names, when IN.h5 has labels
// (train/image_embeddings.h). Images are normalised as the recipe's evaluation does. OUT.h5 is
// written to a temporary file and renamed into place, so an existing OUT.h5 is never left
// half-written.
#include <fmt/format.h>
#include <hdf5.h>

#include <filesystem>
#include <map>
#include <memory>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "data/hdf5_util.h"
#include "kernels/threads.h"
#include "nn/vit.h"
#include "train/autoencoder_tokens.h"
#include "train/checkpoint.h"
#include "train/command.h"
#include "train/experiment.h"
#include "train/image_embeddings.h"

namespace tessera::cli {
namespace {

using data::h5::Handle;
using data::h5::refuse_same_file;
using data::h5::write_atomically;
using data::h5::write_attribute;

void check(herr_t status, const std::string& what) {
  if (status < 0) fail("{}", what);
}

// A float32 or int64 dataset of shape [N, ...] filled batch by batch along its first dim.
class RowWriter {
 public:
  RowWriter(hid_t file, const char* name, hid_t type, std::vector<hsize_t> dims, const std::string& path)
      : type_(type), dims_(std::move(dims)), where_(fmt::format("{}: dataset '{}'", path, name)) {
    Handle space(H5Screate_simple(int(dims_.size()), dims_.data(), nullptr));
    Handle props(H5Pcreate(H5P_DATASET_CREATE));
    std::vector<hsize_t> chunk = dims_;
    chunk[0] = std::max<hsize_t>(1, std::min<hsize_t>(dims_[0], 64));
    if (dims_[0] > 0) check(H5Pset_chunk(props.get(), int(chunk.size()), chunk.data()), where_ + ": cannot chunk");
    dataset_ = Handle(H5Dcreate2(file, name, type, space.get(), H5P_DEFAULT, props.get(), H5P_DEFAULT));
    if (!dataset_.valid()) fail("{}: cannot create", where_);
  }
  // Rows [start, start + count) from contiguous memory.
  void write(hsize_t start, hsize_t count, const void* rows) {
    if (count == 0) return;
    std::vector<hsize_t> offset(dims_.size(), 0), size = dims_;
    offset[0] = start, size[0] = count;
    Handle file_space(H5Dget_space(dataset_.get()));
    check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, offset.data(), nullptr, size.data(), nullptr),
          where_ + ": cannot select rows");
    Handle memory_space(H5Screate_simple(int(size.size()), size.data(), nullptr));
    check(H5Dwrite(dataset_.get(), type_, memory_space.get(), file_space.get(), H5P_DEFAULT, rows),
          where_ + ": cannot write");
  }
  hid_t id() const { return dataset_.get(); }

 private:
  hid_t type_;
  std::vector<hsize_t> dims_;
  std::string where_;
  Handle dataset_;
};

struct Options {
  std::string checkpoint, input, output;
  int64_t batch = 0, threads = 0;
};

Options parse(const std::vector<std::string>& args) {
  Options o;
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--batch" || a == "--threads") {
      if (i + 1 >= args.size()) fail("{} needs a value", a);
      (a == "--batch" ? o.batch : o.threads) = train::parse_count(a, args[++i], 1);
    } else if (a.rfind("--", 0) == 0) {
      fail("unknown option '{}' (see tessera tokenize --help)", a);
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 3)
    fail("give a checkpoint, an input data set and an output file, e.g. "
         "tessera tokenize runs/vit_fmnist/last.h5 datasets/fmnist/test.h5 tokens.h5");
  o.checkpoint = positional[0], o.input = positional[1], o.output = positional[2];
  return o;
}

// A dual encoder's unit image embeddings: `embeddings` [N, embed_dim] (+ labels with class_names).
void write_image_embeddings(const Options& o) {
  refuse_same_file(o.input, o.output);
  train::ImageEmbedder embedder(o.checkpoint);
  const std::shared_ptr<data::Dataset> dataset = data::Dataset::open(o.input);
  const data::DatasetInfo& info = dataset->info();
  const auto N = hsize_t(dataset->size()), E = hsize_t(embedder.dim());
  write_atomically(o.output, [&](hid_t file) {
    RowWriter embeddings(file, "embeddings", H5T_NATIVE_FLOAT, {N, E}, o.output);
    std::unique_ptr<RowWriter> labels;
    if (info.has_labels) {
      labels = std::make_unique<RowWriter>(file, "labels", H5T_NATIVE_INT64, std::vector<hsize_t>{N}, o.output);
      write_attribute(labels->id(), "class_names", info.class_names);
    }
    hsize_t done = 0;
    embedder.for_each_batch(dataset, o.input, o.batch, -1, [&](const data::Batch& batch, const Tensor& e) {
      const auto n = hsize_t(e.size(0));
      embeddings.write(done, n, e.data<float>());
      if (labels) labels->write(done, n, batch.labels.contiguous().data<int64_t>());
      done += n;
    });
    if (done != N) fail("tokenize: wrote {} of {} images", done, N);
    write_attribute(file, "checkpoint", o.checkpoint);
    write_attribute(file, "step", embedder.step());
    write_attribute(file, "model", embedder.model_type());
    write_attribute(file, "embedding", embedder.description());
    write_attribute(file, "embed_dim", int64_t(E));
    write_attribute(file, "image_shape", std::vector<int64_t>{info.channels, info.height, info.width});
    write_attribute(file, "source", o.input);
  });
  fmt::print("wrote {}: embeddings float32 [{}, {}] (L2-normalised {} image embeddings){}\n", o.output, N, E,
             embedder.model_type(), info.has_labels ? fmt::format(", labels [{}]", N) : "");
}

int run_tokenize(const std::vector<std::string>& args) {
  const Options o = parse(args);
  if (o.threads > 0) kernels::set_num_threads(int(o.threads));
  const train::Checkpoint c = train::load_checkpoint(o.checkpoint);
  train::Recipe recipe = train::Recipe::parse(c.meta.recipe, o.checkpoint + " (stored recipe)");
  const std::string type = recipe.section("model").string("type");
  // Image tokenizers (vae, vqvae, fsq) write their own token files: train/autoencoder_tokens.h.
  if (train::is_autoencoder_type(type)) {
    train::tokenize_with_autoencoder(o.checkpoint, o.input, o.output, o.batch);
    return 0;
  }
  if (type == "clip" || type == "siglip") {
    write_image_embeddings(o);
    return 0;
  }
  if (type != "vit")
    fail("tokenize: {} holds a '{}' model; tokenize reads vit, clip, siglip, vae, vqvae and fsq checkpoints",
         o.checkpoint, type);
  if (c.meta.input_shape.size() != 3) fail("checkpoint {}: meta/input_shape should hold [C, H, W]", o.checkpoint);
  refuse_same_file(o.input, o.output);

  std::shared_ptr<data::Dataset> dataset = data::Dataset::open(o.input);
  train::DataShape shape;
  shape.channels = c.meta.input_shape[0], shape.height = c.meta.input_shape[1], shape.width = c.meta.input_shape[2];
  shape.num_classes = c.meta.num_classes;
  const train::DataShape given = train::data_shape(dataset->info(), recipe);
  if (given.channels != shape.channels || given.height != shape.height || given.width != shape.width)
    fail("{} holds {}x{}x{} images (C x H x W) but the model was trained on {}x{}x{}", o.input, given.channels,
         given.height, given.width, shape.channels, shape.height, shape.width);

  Generator gen(0);
  std::shared_ptr<nn::Module> model = train::build_model(recipe, shape, gen);
  auto* classifier = dynamic_cast<nn::ViTClassifier*>(model.get());
  if (!classifier) fail("tokenize: the model built from {} is not a ViT", o.checkpoint);
  // The EMA weights when the run kept them and evaluates with them, as `tessera eval` does.
  std::map<std::string, Tensor> weights = c.params;
  if (!c.ema.empty() && recipe.section("eval").boolean("use_ema"))
    for (const auto& [name, t] : c.ema) weights[name] = t;
  model->load_state(weights);
  model->eval();
  nn::VisionTransformer& vit = classifier->vit();
  const auto N = hsize_t(dataset->size()), T = hsize_t(vit.num_patches()), W = hsize_t(vit.config().width);

  data::LoaderOptions lo = train::loader_options(recipe, false);
  if (o.batch > 0) lo.batch_size = o.batch;
  const data::Loader loader(dataset, lo);

  write_atomically(o.output, [&](hid_t file) {
    RowWriter tokens(file, "tokens", H5T_NATIVE_FLOAT, {N, T, W}, o.output);
    RowWriter pooled(file, "pooled", H5T_NATIVE_FLOAT, {N, W}, o.output);
    std::unique_ptr<RowWriter> labels;
    if (dataset->info().has_labels) {
      labels = std::make_unique<RowWriter>(file, "labels", H5T_NATIVE_INT64, std::vector<hsize_t>{N}, o.output);
      write_attribute(labels->id(), "class_names", dataset->info().class_names);
    }
    NoGradGuard no_grad;
    hsize_t done = 0;
    for (int64_t b = 0; b < loader.batches_per_epoch(); ++b) {
      const data::Batch batch = loader.make_batch(0, b);
      const nn::ViTOutput out = vit.forward(batch.images);
      const auto n = hsize_t(batch.images.size(0));
      tokens.write(done, n, out.tokens.contiguous().data<float>());
      pooled.write(done, n, out.pooled.contiguous().data<float>());
      if (labels) labels->write(done, n, batch.labels.contiguous().data<int64_t>());
      done += n;
    }
    if (done != N) fail("tokenize: wrote {} of {} images", done, N);
    write_attribute(file, "checkpoint", o.checkpoint);
    write_attribute(file, "step", c.meta.step);
    write_attribute(file, "model", type);
  });
  fmt::print("wrote {}: tokens [{}, {}, {}], pooled [{}, {}]{}\n", o.output, N, T, W, N, W,
             dataset->info().has_labels ? fmt::format(", labels [{}]", N) : "");
  return 0;
}

const CommandRegistration registration{
    {"tokenize", "write the tokens of a data set from a ViT, CLIP, SigLIP, VAE, VQ-VAE or FSQ checkpoint",
     "usage: tessera tokenize CKPT IN.h5 OUT.h5 [--batch N] [--threads N]\n\n"
     "Rebuilds the ViT from the recipe stored in CKPT (its EMA weights when `tessera eval` uses them) and runs\n"
     "every image of IN.h5 through it, normalised as the recipe's evaluation does. OUT.h5 gets\n"
     "`tokens` float32 [N, patches, width] (patch tokens after the final norm, CLS excluded),\n"
     "`pooled` float32 [N, width] (CLS token or mean of the patch tokens, as the model pools) and,\n"
     "when IN.h5 has labels, `labels` int64 [N] with attribute class_names. OUT.h5 is written to\n"
     "OUT.h5.tmp and renamed into place at the end.\n\n"
     "For an image tokenizer (vae, vqvae, fsq) OUT.h5 gets `tokens` int32 [N, h, w] (codebook indices)\n"
     "or float32 [N, h, w, c] (VAE posterior means), labels as above, and attributes naming the\n"
     "checkpoint and the `tessera decode` command that turns the tokens back into images.\n\n"
     "For a dual encoder (clip, siglip) OUT.h5 gets `embeddings` float32 [N, embed_dim] (the image\n"
     "tower's joint-space embeddings, L2-normalised, as the model compares them), `labels` int64 [N] with\n"
     "attribute class_names when IN.h5 has labels, and attributes checkpoint, step, model, embedding,\n"
     "embed_dim, image_shape and source (IN.h5). `tessera probe` fits a linear classifier on the same\n"
     "embeddings.\n\n"
     "  --batch N    images per forward pass (default: the recipe's eval.batch_size)\n"
     "  --threads N  worker threads",
     run_tokenize}};

}  // namespace
}  // namespace tessera::cli
