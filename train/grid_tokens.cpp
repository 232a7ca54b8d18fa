#include "train/grid_tokens.h"

#include <fmt/format.h>
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "data/dataset.h"
#include "data/hdf5_util.h"

namespace tessera::train {
namespace {

using data::h5::Handle;
using data::h5::RowWriter;

// Images as u8 [n, H, W, C] from a decoder's [n, C, H, W] output in [0, 1].
std::vector<uint8_t> to_pixels(const Tensor& images) {
  const Tensor nhwc = images.permute({0, 2, 3, 1}).contiguous();
  const float* p = nhwc.data<float>();
  std::vector<uint8_t> out(size_t(nhwc.numel()));
  for (size_t i = 0; i < out.size(); ++i) out[i] = uint8_t(std::lround(std::clamp(p[i], 0.0f, 1.0f) * 255.0f));
  return out;
}

// [N, h, w] for hard tokens, [N, h, w, c] for soft ones.
std::vector<hsize_t> token_dims(hsize_t n, const nn::TokenGrid& grid) {
  std::vector<hsize_t> dims{n, hsize_t(grid.height), hsize_t(grid.width)};
  if (!grid.hard()) dims.push_back(hsize_t(grid.channels));
  return dims;
}

std::string describe(const nn::TokenGrid& grid) {
  if (grid.hard())
    return fmt::format("integer [N, {}, {}] ({} codes of a codebook of {})", grid.height, grid.width, grid.kind,
                       grid.codebook_size);
  return fmt::format("float [N, {}, {}, {}] ({} latents)", grid.height, grid.width, grid.channels, grid.kind);
}

// The labels of a token file when it has them with their class names, else nothing.
void read_labels(hid_t file, hsize_t n, const std::string& path, std::vector<int64_t>& labels,
                 std::vector<std::string>& class_names) {
  if (!data::h5::link_exists(file, "labels")) return;
  Handle d(H5Dopen2(file, "labels", H5P_DEFAULT));
  if (data::h5::dims_of(d.get()) != std::vector<hsize_t>{n} || H5Aexists(d.get(), "class_names") <= 0) return;
  Handle attr(H5Aopen(d.get(), "class_names", H5P_DEFAULT));
  if (!data::h5::read_strings_attribute(attr.get(), class_names) || class_names.empty()) {
    class_names.clear();
    return;
  }
  labels.resize(size_t(n));
  data::h5::read_rows(d.get(), H5T_NATIVE_INT64, 0, n, labels.data(), path + ": labels");
}

}  // namespace

void write_grid_tokens(const TrainedModel& model, nn::ImageToTokens& tokenizer, const std::string& input,
                       const std::string& output, int64_t batch) {
  data::h5::refuse_same_file(input, output);
  data::h5::refuse_same_file(model.path(), output);
  const std::shared_ptr<data::Dataset> dataset = data::Dataset::open(input);
  const data::DatasetInfo& info = dataset->info();
  model.check_images(info, input);
  const nn::TokenGrid grid = tokenizer.token_grid(info.height, info.width);
  const auto N = hsize_t(dataset->size());

  data::h5::write_atomically(output, [&](hid_t file) {
    RowWriter tokens(file, "tokens", grid.hard() ? H5T_STD_I32LE : H5T_IEEE_F32LE, token_dims(N, grid), output, true);
    std::unique_ptr<RowWriter> labels;
    if (info.has_labels) {
      labels = std::make_unique<RowWriter>(file, "labels", H5T_STD_I64LE, std::vector<hsize_t>{N}, output, true);
      data::h5::write_attribute(labels->id(), "class_names", info.class_names);
    }
    hsize_t done = 0;
    model.for_each_batch(dataset, input, batch, -1, [&](const data::Batch& b) {
      const Tensor t = tokenizer.tokenize(b.images);
      const auto n = hsize_t(t.size(0));
      if (grid.hard()) tokens.write(H5T_NATIVE_INT32, done, n, t.to(DType::i32).contiguous().data<int32_t>());
      else tokens.write(H5T_NATIVE_FLOAT, done, n, t.contiguous().data<float>());
      if (labels) labels->write(H5T_NATIVE_INT64, done, n, b.labels.contiguous().data<int64_t>());
      done += n;
    });
    if (done != N) fail("tokenize: wrote {} of {} images", done, N);
    data::h5::write_attribute(file, "checkpoint", model.path());
    data::h5::write_attribute(file, "step", model.step());
    data::h5::write_attribute(file, "model", model.type());
    data::h5::write_attribute(file, "bottleneck", grid.kind);
    data::h5::write_attribute(file, "codebook_size", grid.codebook_size);
    data::h5::write_attribute(file, "image_shape", std::vector<int64_t>{info.channels, info.height, info.width});
    data::h5::write_attribute(file, "downsample", grid.downsample);
    data::h5::write_attribute(file, "decode", fmt::format("tessera decode {} {} IMAGES.h5", model.path(), output));
  });
  fmt::print("wrote {}: tokens {} [{}, {}, {}{}]{}\n", output, grid.hard() ? "int32" : "float32", N, grid.height,
             grid.width, grid.hard() ? "" : fmt::format(", {}", grid.channels),
             info.has_labels ? fmt::format(", labels [{}]", N) : "");
}

void decode_grid_tokens(const TrainedModel& model, nn::TokensToImage& decoder, const std::string& tokens_path,
                        const std::string& output, int64_t batch) {
  data::h5::refuse_same_file(tokens_path, output);
  data::h5::refuse_same_file(model.path(), output);
  const DataShape& image = model.shape();
  const nn::TokenGrid grid = decoder.token_grid(image.height, image.width);

  data::h5::silence_errors();
  if (!std::filesystem::exists(tokens_path)) fail("{}: no such file", tokens_path);
  Handle file(H5Fopen(tokens_path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!file.valid()) fail("{}: not an HDF5 file", tokens_path);
  if (!data::h5::link_exists(file.get(), "tokens")) fail("{}: no dataset 'tokens' (write one with tessera tokenize)", tokens_path);
  Handle tokens(H5Dopen2(file.get(), "tokens", H5P_DEFAULT));
  const std::vector<hsize_t> dims = data::h5::dims_of(tokens.get());
  Handle type(H5Dget_type(tokens.get()));
  const std::vector<hsize_t> expected = token_dims(dims.empty() ? 0 : dims[0], grid);
  if (dims != expected || H5Tget_class(type.get()) != (grid.hard() ? H5T_INTEGER : H5T_FLOAT)) {
    std::vector<std::string> shown;
    for (hsize_t d : dims) shown.push_back(std::to_string(d));
    fail("{}: dataset 'tokens' is {} [{}], but the model of {} decodes {}", tokens_path,
         data::h5::type_name(type.get()), fmt::join(shown, ", "), model.path(), describe(grid));
  }
  const int64_t N = int64_t(dims[0]);
  const int64_t per_image = grid.height * grid.width * (grid.hard() ? 1 : grid.channels);

  std::vector<int64_t> labels;
  std::vector<std::string> class_names;
  read_labels(file.get(), hsize_t(N), tokens_path, labels, class_names);

  data::DatasetWriter writer(output, image.height, image.width, image.channels, class_names);
  const int64_t step = model.image_loader(batch).batch_size;
  NoGradGuard no_grad;
  for (int64_t start = 0; start < N; start += step) {
    const int64_t n = std::min(step, N - start);
    Shape shape{n, grid.height, grid.width};
    if (!grid.hard()) shape.push_back(grid.channels);
    Tensor t = Tensor::empty(shape, grid.hard() ? DType::i64 : DType::f32);
    data::h5::read_rows(tokens.get(), grid.hard() ? H5T_NATIVE_INT64 : H5T_NATIVE_FLOAT, hsize_t(start), hsize_t(n),
                        t.raw_data(), tokens_path + ": tokens");
    if (grid.hard()) {
      const int64_t* p = t.data<int64_t>();
      for (int64_t i = 0; i < n * per_image; ++i)
        if (p[i] < 0 || p[i] >= grid.codebook_size)
          fail("{}: token {} (image {}, row {}, column {}) is {}, outside the codebook [0, {}) of {}", tokens_path,
               start * per_image + i, start + i / per_image, (i % per_image) / grid.width, i % grid.width, p[i],
               grid.codebook_size, model.path());
    }
    const std::vector<uint8_t> pixels = to_pixels(decoder.decode(t));
    writer.append(pixels.data(), n, labels.empty() ? nullptr : labels.data() + start);
  }
  writer.close();
  fmt::print("wrote {}: {} images {}x{}x{} decoded by {}\n", output, N, image.height, image.width, image.channels,
             model.path());
}

}  // namespace tessera::train
