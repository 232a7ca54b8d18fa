#include "train/autoencoder_tokens.h"

#include <fmt/format.h>
#include <hdf5.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "data/dataset.h"
#include "data/hdf5_util.h"
#include "data/loader.h"
#include "nn/autoencoder.h"
#include "train/checkpoint.h"
#include "train/experiment.h"

namespace tessera::train {
namespace {

using data::h5::Handle;
using data::h5::refuse_same_file;
using data::h5::write_atomically;
using data::h5::write_attribute;

void check(herr_t status, const std::string& what) {
  if (status < 0) fail("{}", what);
}

struct LoadedModel {
  Checkpoint checkpoint;
  std::string type;
  int64_t channels = 0, height = 0, width = 0;
  std::shared_ptr<nn::Module> module;
  nn::Autoencoder* model = nullptr;
  data::LoaderOptions loader;
};

LoadedModel load(const std::string& path) {
  LoadedModel m;
  m.checkpoint = load_checkpoint(path);
  const Recipe recipe = Recipe::parse(m.checkpoint.meta.recipe, path + " (stored recipe)");
  m.type = recipe.section("model").string("type");
  if (!is_autoencoder_type(m.type)) fail("{} holds a '{}' model, not an image tokenizer (vae, vqvae, fsq)", path, m.type);
  const auto& shape = m.checkpoint.meta.input_shape;
  if (shape.size() != 3) fail("checkpoint {}: meta/input_shape should hold [C, H, W]", path);
  m.channels = shape[0], m.height = shape[1], m.width = shape[2];
  Generator gen(0);
  DataShape data;
  data.channels = m.channels, data.height = m.height, data.width = m.width, data.num_classes = m.checkpoint.meta.num_classes;
  m.module = build_model(recipe, data, gen);
  m.model = dynamic_cast<nn::Autoencoder*>(m.module.get());
  if (!m.model) fail("{}: the model built from the stored recipe is not an autoencoder", path);
  m.module->load_state(m.checkpoint.params);
  m.module->eval();
  m.loader = loader_options(recipe, false);
  return m;
}

Handle create_dataset(hid_t file, const char* name, hid_t type, const std::vector<hsize_t>& dims) {
  Handle space(H5Screate_simple(int(dims.size()), dims.data(), nullptr));
  Handle props(H5Pcreate(H5P_DATASET_CREATE));
  std::vector<hsize_t> chunk = dims;
  chunk[0] = std::max<hsize_t>(1, std::min<hsize_t>(dims[0], 256));
  if (dims[0] > 0) {
    check(H5Pset_chunk(props.get(), int(chunk.size()), chunk.data()), fmt::format("cannot chunk dataset '{}'", name));
    check(H5Pset_deflate(props.get(), 4), fmt::format("cannot compress dataset '{}'", name));
  }
  Handle d(H5Dcreate2(file, name, type, space.get(), H5P_DEFAULT, props.get(), H5P_DEFAULT));
  if (!d.valid()) fail("cannot create dataset '{}'", name);
  return d;
}

// Rows [start, start + count) of a dataset, to or from memory of type `memory_type`.
void rows_io(hid_t dataset, hid_t memory_type, hsize_t start, hsize_t count, void* rows, bool write,
             const std::string& where) {
  if (count == 0) return;
  Handle file_space(H5Dget_space(dataset));
  std::vector<hsize_t> dims(size_t(H5Sget_simple_extent_ndims(file_space.get())));
  H5Sget_simple_extent_dims(file_space.get(), dims.data(), nullptr);
  std::vector<hsize_t> offset(dims.size(), 0), size = dims;
  offset[0] = start, size[0] = count;
  check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, offset.data(), nullptr, size.data(), nullptr),
        where + ": cannot select rows");
  Handle memory_space(H5Screate_simple(int(size.size()), size.data(), nullptr));
  if (write) check(H5Dwrite(dataset, memory_type, memory_space.get(), file_space.get(), H5P_DEFAULT, rows), where + ": cannot write");
  else check(H5Dread(dataset, memory_type, memory_space.get(), file_space.get(), H5P_DEFAULT, rows), where + ": cannot read");
}

// Images as u8 [n, H, W, C] from a decoder's [n, C, H, W] output in [0, 1].
std::vector<uint8_t> to_pixels(const Tensor& images) {
  const Tensor nhwc = images.permute({0, 2, 3, 1}).contiguous();
  const float* p = nhwc.data<float>();
  std::vector<uint8_t> out(size_t(nhwc.numel()));
  for (size_t i = 0; i < out.size(); ++i) out[i] = uint8_t(std::lround(std::clamp(p[i], 0.0f, 1.0f) * 255.0f));
  return out;
}

}  // namespace

bool is_autoencoder_type(const std::string& type) { return type == "vae" || type == "vqvae" || type == "fsq"; }

void tokenize_with_autoencoder(const std::string& checkpoint, const std::string& input, const std::string& output,
                               int64_t batch) {
  refuse_same_file(input, output);
  LoadedModel m = load(checkpoint);
  nn::Autoencoder& model = *m.model;
  const std::shared_ptr<data::Dataset> dataset = data::Dataset::open(input);
  const data::DatasetInfo& info = dataset->info();
  if (info.channels != m.channels || info.height != m.height || info.width != m.width)
    fail("{} holds {}x{}x{} images (C x H x W) but the model of {} was trained on {}x{}x{}", input, info.channels,
         info.height, info.width, checkpoint, m.channels, m.height, m.width);
  if (batch > 0) m.loader.batch_size = batch;
  const data::Loader loader(dataset, m.loader);
  const int64_t f = model.options().downsample, h = m.height / f, w = m.width / f, c = model.token_channels();
  const bool soft = model.bottleneck() == nn::Bottleneck::gaussian;
  const auto N = hsize_t(dataset->size());

  write_atomically(output, [&](hid_t file) {
    std::vector<hsize_t> dims{N, hsize_t(h), hsize_t(w)};
    if (soft) dims.push_back(hsize_t(c));
    Handle tokens = create_dataset(file, "tokens", soft ? H5T_IEEE_F32LE : H5T_STD_I32LE, dims);
    Handle labels;
    if (info.has_labels) {
      labels = create_dataset(file, "labels", H5T_STD_I64LE, {N});
      write_attribute(labels.get(), "class_names", info.class_names);
    }
    NoGradGuard no_grad;
    hsize_t done = 0;
    for (int64_t b = 0; b < loader.batches_per_epoch(); ++b) {
      const data::Batch batch_data = loader.make_batch(0, b);
      const Tensor t = model.tokenize(batch_data.images);
      const auto n = hsize_t(t.size(0));
      if (soft) {
        rows_io(tokens.get(), H5T_NATIVE_FLOAT, done, n, t.contiguous().data<float>(), true, output + ": tokens");
      } else {
        const Tensor codes = t.to(DType::i32).contiguous();
        rows_io(tokens.get(), H5T_NATIVE_INT32, done, n, codes.data<int32_t>(), true, output + ": tokens");
      }
      if (labels.valid()) rows_io(labels.get(), H5T_NATIVE_INT64, done, n, batch_data.labels.contiguous().data<int64_t>(), true, output + ": labels");
      done += n;
    }
    if (done != N) fail("tokenize: wrote {} of {} images", done, N);
    write_attribute(file, "checkpoint", checkpoint);
    write_attribute(file, "step", m.checkpoint.meta.step);
    write_attribute(file, "model", m.type);
    write_attribute(file, "bottleneck", nn::bottleneck_name(model.bottleneck()));
    write_attribute(file, "codebook_size", int64_t(model.codebook_size()));
    write_attribute(file, "image_shape", std::vector<int64_t>{m.channels, m.height, m.width});
    write_attribute(file, "downsample", int64_t(f));
    write_attribute(file, "decode", fmt::format("tessera decode {} {} IMAGES.h5", checkpoint, output));
  });
  fmt::print("wrote {}: tokens {} [{}, {}, {}{}]{}\n", output, soft ? "float32" : "int32", N, h, w,
             soft ? fmt::format(", {}", c) : "", info.has_labels ? fmt::format(", labels [{}]", N) : "");
}

void decode_with_autoencoder(const std::string& checkpoint, const std::string& tokens_path, const std::string& output,
                             int64_t batch) {
  refuse_same_file(tokens_path, output);
  LoadedModel m = load(checkpoint);
  nn::Autoencoder& model = *m.model;
  if (batch > 0) m.loader.batch_size = batch;
  const int64_t f = model.options().downsample, h = m.height / f, w = m.width / f, c = model.token_channels();
  const bool soft = model.bottleneck() == nn::Bottleneck::gaussian;

  data::h5::silence_errors();
  if (!std::filesystem::exists(tokens_path)) fail("{}: no such file", tokens_path);
  Handle file(H5Fopen(tokens_path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!file.valid()) fail("{}: not an HDF5 file", tokens_path);
  if (!data::h5::link_exists(file.get(), "tokens")) fail("{}: no dataset 'tokens' (write one with tessera tokenize)", tokens_path);
  Handle tokens(H5Dopen2(file.get(), "tokens", H5P_DEFAULT));
  Handle space(H5Dget_space(tokens.get()));
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(size_t(std::max(rank, 0)));
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  Handle type(H5Dget_type(tokens.get()));
  const H5T_class_t type_class = H5Tget_class(type.get());
  const std::string want = soft ? fmt::format("float [N, {}, {}, {}] (VAE latents)", h, w, c)
                                : fmt::format("integer [N, {}, {}] ({} codes of a {} codebook of {})", h, w,
                                              m.type, m.type, model.codebook_size());
  std::vector<hsize_t> expected{0, hsize_t(h), hsize_t(w)};
  if (soft) expected.push_back(hsize_t(c));
  bool ok = rank == int(expected.size()) && (soft ? type_class == H5T_FLOAT : type_class == H5T_INTEGER);
  for (size_t d = 1; ok && d < expected.size(); ++d) ok = dims[d] == expected[d];
  if (!ok) {
    std::vector<std::string> shown;
    for (hsize_t d : dims) shown.push_back(std::to_string(d));
    fail("{}: dataset 'tokens' is {} [{}], but the model of {} decodes {}", tokens_path, data::h5::type_name(type.get()),
         fmt::join(shown, ", "), checkpoint, want);
  }
  const int64_t N = int64_t(dims[0]);
  const int64_t per_row = h * w * (soft ? c : 1);

  // Labels travel along when the token file has them with their class names.
  std::vector<std::string> class_names;
  std::vector<int64_t> labels;
  if (data::h5::link_exists(file.get(), "labels")) {
    Handle ld(H5Dopen2(file.get(), "labels", H5P_DEFAULT));
    Handle ls(H5Dget_space(ld.get()));
    hsize_t n = 0;
    if (H5Sget_simple_extent_ndims(ls.get()) == 1 && (H5Sget_simple_extent_dims(ls.get(), &n, nullptr), n == hsize_t(N)) &&
        H5Aexists(ld.get(), "class_names") > 0) {
      Handle attr(H5Aopen(ld.get(), "class_names", H5P_DEFAULT));
      if (data::h5::read_strings_attribute(attr.get(), class_names) && !class_names.empty()) {
        labels.resize(size_t(N));
        rows_io(ld.get(), H5T_NATIVE_INT64, 0, hsize_t(N), labels.data(), false, tokens_path + ": labels");
      } else {
        class_names.clear();
      }
    }
  }

  data::DatasetWriter writer(output, m.height, m.width, m.channels, class_names);
  const int64_t step = m.loader.batch_size;
  NoGradGuard no_grad;
  for (int64_t start = 0; start < N; start += step) {
    const int64_t n = std::min(step, N - start);
    Tensor t;
    if (soft) {
      t = Tensor::empty({n, h, w, c});
      rows_io(tokens.get(), H5T_NATIVE_FLOAT, hsize_t(start), hsize_t(n), t.data<float>(), false, tokens_path + ": tokens");
    } else {
      t = Tensor::empty({n, h, w}, DType::i64);
      rows_io(tokens.get(), H5T_NATIVE_INT64, hsize_t(start), hsize_t(n), t.data<int64_t>(), false, tokens_path + ": tokens");
      const int64_t* p = t.data<int64_t>();
      for (int64_t i = 0; i < n * per_row; ++i)
        if (p[i] < 0 || p[i] >= model.codebook_size())
          fail("{}: token {} (image {}, row {}, column {}) is {}, outside the codebook [0, {}) of {}", tokens_path,
               start * per_row + i, start + i / per_row, (i % per_row) / w, i % w, p[i], model.codebook_size(), checkpoint);
    }
    const std::vector<uint8_t> pixels = to_pixels(model.decode(t));
    writer.append(pixels.data(), n, labels.empty() ? nullptr : labels.data() + start);
  }
  writer.close();
  fmt::print("wrote {}: {} images {}x{}x{} decoded by {}\n", output, N, m.height, m.width, m.channels, checkpoint);
}

}  // namespace tessera::train
