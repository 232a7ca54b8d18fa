#include "train/image_embeddings.h"

#include <fmt/format.h>
#include <hdf5.h>

#include <algorithm>
#include <filesystem>

#include "autograd/error.h"
#include "autograd/ops.h"
#include "data/hdf5_util.h"

namespace tessera::train {

using data::h5::Handle;

EmbeddedImages embed_images(const TrainedModel& model, nn::ImageToEmbedding& embedder,
                            const std::shared_ptr<data::Dataset>& dataset, const std::string& dataset_path,
                            int64_t batch_size, int64_t limit) {
  std::vector<Tensor> embeddings, labels;
  model.for_each_batch(dataset, dataset_path, batch_size, limit, [&](const data::Batch& batch) {
    embeddings.push_back(embedder.embed_images(batch.images).contiguous());
    if (batch.labels.defined()) labels.push_back(batch.labels);
  });
  EmbeddedImages out;
  out.embeddings = embeddings.empty() ? Tensor::zeros({0, embedder.image_embedding_dim()}) : concat(embeddings, 0);
  if (!labels.empty() && labels.size() == embeddings.size()) out.labels = concat(labels, 0);
  return out;
}

bool is_embeddings_file(const std::string& path) {
  data::h5::silence_errors();
  if (!std::filesystem::is_regular_file(path) || H5Fis_hdf5(path.c_str()) <= 0) return false;
  Handle file(data::h5::open_for_reading(path));
  return file.valid() && data::h5::link_exists(file.get(), "embeddings") && !data::h5::link_exists(file.get(), "images");
}

EmbeddingsFile read_embeddings_file(const std::string& path, int64_t limit) {
  data::h5::silence_errors();
  Handle file(data::h5::open_for_reading(path));
  if (!file.valid()) fail("{}: not an HDF5 file", path);
  if (!data::h5::link_exists(file.get(), "embeddings")) fail("{}: no dataset 'embeddings' (write one with tessera tokenize)", path);
  Handle e(H5Dopen2(file.get(), "embeddings", H5P_DEFAULT));
  Handle type(H5Dget_type(e.get()));
  const std::vector<hsize_t> dims = data::h5::dims_of(e.get());
  if (dims.size() != 2 || H5Tget_class(type.get()) != H5T_FLOAT)
    fail("{}: dataset 'embeddings' should be float [N, E], got {} of rank {}", path, data::h5::type_name(type.get()),
         dims.size());
  const auto n = hsize_t(limit < 0 ? int64_t(dims[0]) : std::min<int64_t>(limit, int64_t(dims[0])));
  EmbeddingsFile out;
  out.embeddings = Tensor::empty({int64_t(n), int64_t(dims[1])});
  data::h5::read_rows(e.get(), H5T_NATIVE_FLOAT, 0, n, out.embeddings.data<float>(), path + ": embeddings");
  if (data::h5::link_exists(file.get(), "labels")) {
    Handle l(H5Dopen2(file.get(), "labels", H5P_DEFAULT));
    Handle ltype(H5Dget_type(l.get()));
    const std::vector<hsize_t> ldims = data::h5::dims_of(l.get());
    if (ldims.size() != 1 || ldims[0] != dims[0] || H5Tget_class(ltype.get()) != H5T_INTEGER)
      fail("{}: dataset 'labels' should be integer [{}] like the embeddings, got {} of rank {}", path, dims[0],
           data::h5::type_name(ltype.get()), ldims.size());
    out.labels = Tensor::empty({int64_t(n)}, DType::i64);
    data::h5::read_rows(l.get(), H5T_NATIVE_INT64, 0, n, out.labels.data<int64_t>(), path + ": labels");
    if (H5Aexists(l.get(), "class_names") > 0) {
      Handle names(H5Aopen(l.get(), "class_names", H5P_DEFAULT));
      if (!data::h5::read_strings_attribute(names.get(), out.class_names))
        fail("{}: attribute labels/class_names should hold strings", path);
    }
  }
  out.checkpoint = data::h5::string_attribute(file.get(), "checkpoint");
  out.model = data::h5::string_attribute(file.get(), "model");
  return out;
}

}  // namespace tessera::train
