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
#include "data/image_io.h"
#include "train/image_rows.h"

namespace tessera::train {
namespace {

using data::h5::Handle;
using data::h5::RowWriter;

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
  // Checked here, so that a bad label is blamed on this file rather than on the output it would go to.
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] < 0 || labels[i] >= int64_t(class_names.size()))
      fail("{}: dataset 'labels' holds {} at index {}, outside its class_names [0, {})", path, labels[i], i,
           class_names.size());
}

}  // namespace

void write_grid_tokens(const TrainedModel& model, nn::ImageToTokens& tokenizer, const std::string& input,
                       const std::string& output, bool overwrite, int64_t batch) {
  nn::TokenGrid grid;
  const data::DatasetInfo info = write_image_rows(
      model, input, output, "tessera tokenize", overwrite, batch, [&](hid_t file, const data::DatasetInfo& images, hsize_t rows) {
        grid = tokenizer.token_grid(images.height, images.width);
        auto tokens = std::make_shared<RowWriter>(file, "tokens", grid.hard() ? H5T_STD_I32LE : H5T_IEEE_F32LE,
                                                  token_dims(rows, grid), output, true);
        data::h5::write_attribute(file, "bottleneck", grid.kind);
        data::h5::write_attribute(file, "codebook_size", grid.codebook_size);
        data::h5::write_attribute(file, "image_shape", std::vector<int64_t>{images.channels, images.height, images.width});
        data::h5::write_attribute(file, "downsample", grid.downsample);
        data::h5::write_attribute(file, "decode", fmt::format("tessera decode {} {} IMAGES.h5", model.path(), output));
        return [&tokenizer, tokens, hard = grid.hard()](const data::Batch& b, hsize_t start, hsize_t count) {
          const Tensor t = tokenizer.tokenize(b.images);
          if (hard) tokens->write(H5T_NATIVE_INT32, start, count, t.to(DType::i32).contiguous().data<int32_t>());
          else tokens->write(H5T_NATIVE_FLOAT, start, count, t.contiguous().data<float>());
        };
      });
  fmt::print("wrote {}: tokens {} [{}, {}, {}{}]{}\n", output, grid.hard() ? "int32" : "float32", info.size, grid.height,
             grid.width, grid.hard() ? "" : fmt::format(", {}", grid.channels),
             info.has_labels ? fmt::format(", labels [{}]", info.size) : "");
}

void decode_grid_tokens(const TrainedModel& model, nn::TokensToImage& decoder, const std::string& tokens_path,
                        const std::string& output, int64_t batch, bool overwrite) {
  data::h5::refuse_same_file(tokens_path, output);
  data::h5::refuse_same_file(model.path(), output, "checkpoint");
  const DataShape& image = model.shape();
  const nn::TokenGrid grid = decoder.token_grid(image.height, image.width);

  data::h5::silence_errors();
  if (!std::filesystem::exists(tokens_path)) fail("{}: no such file", tokens_path);
  Handle file(data::h5::open_for_reading(tokens_path));
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
  if (N == 0) fail("{}: dataset 'tokens' holds no images (its first dimension is 0); nothing to decode", tokens_path);

  std::vector<int64_t> labels;
  std::vector<std::string> class_names;
  read_labels(file.get(), hsize_t(N), tokens_path, labels, class_names);

  // The output is a data set: it may replace an earlier decode's, never another file (a training set).
  data::h5::refuse_to_replace(output, "tessera decode", overwrite);
  data::DatasetWriter writer(output, image.height, image.width, image.channels, class_names);
  writer.set_written_by("tessera decode");
  const int64_t step = model.image_loader(batch).batch_size;
  NoGradGuard no_grad;
  for (int64_t start = 0; start < N; start += step) {
    const int64_t n = std::min(step, N - start);
    Shape shape{n, grid.height, grid.width};
    if (!grid.hard()) shape.push_back(grid.channels);
    Tensor t = Tensor::empty(shape, grid.hard() ? DType::i64 : DType::f32);
    data::h5::read_rows(tokens.get(), grid.hard() ? H5T_NATIVE_INT64 : H5T_NATIVE_FLOAT, hsize_t(start), hsize_t(n),
                        t.raw_data(), tokens_path + ": tokens");
    if (!grid.hard()) {  // a NaN latent decodes to a plausible grey image: refuse it instead
      const float* p = t.data<float>();
      for (int64_t i = 0; i < n * per_image; ++i)
        if (!std::isfinite(p[i]))
          fail("{}: latent value {} (image {}) is {}; latents must be finite numbers", tokens_path, start * per_image + i,
               start + i / per_image, p[i]);
    }
    if (grid.hard()) {
      const int64_t* p = t.data<int64_t>();
      for (int64_t i = 0; i < n * per_image; ++i)
        if (p[i] < 0 || p[i] >= grid.codebook_size)
          fail("{}: token {} (image {}, row {}, column {}) is {}, outside the codebook [0, {}) of {}", tokens_path,
               start * per_image + i, start + i / per_image, (i % per_image) / grid.width, i % grid.width, p[i],
               grid.codebook_size, model.path());
    }
    const std::vector<uint8_t> pixels = data::to_pixels(decoder.decode(t));
    writer.append(pixels.data(), n, labels.empty() ? nullptr : labels.data() + start);
  }
  writer.close();
  fmt::print("wrote {}: {} images {}x{}x{} decoded by {}\n", output, N, image.height, image.width, image.channels,
             model.path());
}

}  // namespace tessera::train
