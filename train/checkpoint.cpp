#include "train/checkpoint.h"

#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>

#include "autograd/error.h"
#include "data/hdf5_util.h"
#include "train/atomic_file.h"

namespace tessera::train {
namespace {

using data::h5::check;
using data::h5::Handle;

hid_t native_type(DType t) {
  switch (t) {
    case DType::f32: return H5T_NATIVE_FLOAT;
    case DType::f64: return H5T_NATIVE_DOUBLE;
    case DType::i32: return H5T_NATIVE_INT32;
    case DType::i64: return H5T_NATIVE_INT64;
    case DType::u8: return H5T_NATIVE_UINT8;
  }
  return H5T_NATIVE_FLOAT;
}

// The dtype a stored dataset reads back as (floats keep their width; integers widen to i64).
DType stored_dtype(hid_t type, const std::string& where) {
  const H5T_class_t cls = H5Tget_class(type);
  if (cls == H5T_FLOAT) return H5Tget_size(type) == 8 ? DType::f64 : DType::f32;
  if (cls == H5T_INTEGER) return H5Tget_size(type) == 1 && H5Tget_sign(type) == H5T_SGN_NONE ? DType::u8 : DType::i64;
  fail("{}: unsupported HDF5 type {}", where, data::h5::type_name(type));
}

void write_tensor(hid_t file, const std::string& name, const Tensor& t, hid_t link_props, const std::string& path) {
  const Tensor c = t.detach().contiguous();
  std::vector<hsize_t> dims(c.shape().begin(), c.shape().end());
  Handle space(c.dim() == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(int(dims.size()), dims.data(), nullptr));
  Handle ds(H5Dcreate2(file, name.c_str(), native_type(c.dtype()), space.get(), link_props, H5P_DEFAULT, H5P_DEFAULT));
  if (!ds.valid()) fail("checkpoint {}: cannot create dataset '{}'", path, name);
  if (c.numel() > 0 && H5Dwrite(ds.get(), native_type(c.dtype()), H5S_ALL, H5S_ALL, H5P_DEFAULT, c.raw_data()) < 0)
    fail("checkpoint {}: cannot write '{}'{}", path, name, data::h5::disk_full_note(path));
}

template <class T>
void write_attribute(hid_t location, const char* name, hid_t type, const T* values, hsize_t count, bool scalar) {
  Handle space(scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &count, nullptr));
  Handle attr(H5Acreate2(location, name, type, space.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.valid() || H5Awrite(attr.get(), type, values) < 0) fail("checkpoint: cannot write attribute meta/{}", name);
}
void write_int(hid_t loc, const char* name, int64_t v) { write_attribute(loc, name, H5T_NATIVE_INT64, &v, 1, true); }
void write_uint(hid_t loc, const char* name, uint64_t v) { write_attribute(loc, name, H5T_NATIVE_UINT64, &v, 1, true); }
void write_double(hid_t loc, const char* name, double v) { write_attribute(loc, name, H5T_NATIVE_DOUBLE, &v, 1, true); }
void write_string(hid_t loc, const char* name, const std::string& v) {
  Handle type = data::h5::utf8_string_type();
  const char* p = v.c_str();
  write_attribute(loc, name, type.get(), &p, 1, true);
}


struct Group {
  std::string prefix;
  std::map<std::string, Tensor>* out;
  std::string path;
  std::exception_ptr error;  // thrown inside the HDF5 callback, rethrown after it
};

herr_t collect_dataset_or_throw(hid_t group, const char* name, Group& g) {
  H5O_info_t info;
  if (H5Oget_info_by_name(group, name, &info, H5P_DEFAULT) < 0 || info.type != H5O_TYPE_DATASET) return 0;
  const std::string where = fmt::format("checkpoint {}: {}/{}", g.path, g.prefix, name);
  Handle ds(H5Dopen2(group, name, H5P_DEFAULT));
  Handle type(H5Dget_type(ds.get())), space(H5Dget_space(ds.get()));
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) fail("{}: unreadable dataspace", where);
  std::vector<hsize_t> dims(rank);
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  const DType dtype = stored_dtype(type.get(), where);
  // The size it declares, checked before anything is allocated (the product may not overflow).
  uint64_t bytes = element_size(dtype);
  for (hsize_t d : dims)
    if (d != 0 && bytes > UINT64_MAX / d) bytes = UINT64_MAX;
    else bytes *= d;
  if (bytes > data::h5::physical_memory_bytes())  // no tensor a file declares may need more
    fail("{}: shape [{}] needs {} bytes, more than this machine's memory; the file is damaged or not a checkpoint", where,
         fmt::join(dims, ", "), bytes == UINT64_MAX ? std::string("more than 2^64") : std::to_string(bytes));
  Tensor t = Tensor::empty(Shape(dims.begin(), dims.end()), dtype);
  if (t.numel() > 0)
    check(H5Dread(ds.get(), native_type(t.dtype()), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.raw_data()), where + ": cannot read");
  (*g.out)[name] = t;
  return 0;
}

// HDF5 calls this from C: an exception must not unwind through its frames (that corrupts the
// library's state and crashes at exit), so it is kept and rethrown once H5Lvisit has returned.
herr_t collect_dataset(hid_t group, const char* name, const H5L_info_t*, void* opaque) {
  auto& g = *static_cast<Group*>(opaque);
  try {
    return collect_dataset_or_throw(group, name, g);
  } catch (...) {
    g.error = std::current_exception();
    return -1;  // stops the iteration
  }
}

void read_group(hid_t file, const char* group, std::map<std::string, Tensor>& out, const std::string& path) {
  if (!data::h5::link_exists(file, group)) return;
  Handle g(H5Gopen2(file, group, H5P_DEFAULT));
  Group state{group, &out, path, nullptr};
  const herr_t visited = H5Lvisit_by_name(file, group, H5_INDEX_NAME, H5_ITER_INC, collect_dataset, &state, H5P_DEFAULT);
  if (state.error) std::rethrow_exception(state.error);
  check(visited, fmt::format("checkpoint {}: cannot read group '{}'", path, group));
}

Handle open_attribute(hid_t meta, const char* name, const std::string& path) {
  Handle a(H5Aopen(meta, name, H5P_DEFAULT));
  if (!a.valid()) fail("checkpoint {}: meta has no attribute '{}' (not a Tessera checkpoint?)", path, name);
  return a;
}
int64_t read_int(hid_t meta, const char* name, const std::string& path) {
  int64_t v = 0;
  Handle a = open_attribute(meta, name, path);
  check(H5Aread(a.get(), H5T_NATIVE_INT64, &v), fmt::format("checkpoint {}: cannot read meta/{}", path, name));
  return v;
}
uint64_t read_uint(hid_t meta, const char* name, const std::string& path) {
  uint64_t v = 0;
  Handle a = open_attribute(meta, name, path);
  check(H5Aread(a.get(), H5T_NATIVE_UINT64, &v), fmt::format("checkpoint {}: cannot read meta/{}", path, name));
  return v;
}
double read_double(hid_t meta, const char* name, const std::string& path) {
  double v = 0;
  Handle a = open_attribute(meta, name, path);
  check(H5Aread(a.get(), H5T_NATIVE_DOUBLE, &v), fmt::format("checkpoint {}: cannot read meta/{}", path, name));
  return v;
}
std::string read_string(hid_t meta, const char* name, const std::string& path) {
  Handle a = open_attribute(meta, name, path);
  std::vector<std::string> values;
  if (!data::h5::read_strings_attribute(a.get(), values) || values.size() != 1)
    fail("checkpoint {}: meta/{} is not a string", path, name);
  return values[0];
}

}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& c) {
  data::h5::silence_errors();
  const std::filesystem::path target(path);
  if (target.has_parent_path()) std::filesystem::create_directories(target.parent_path());
  const std::string temp = path + ".tmp";
  {
    Handle file(data::h5::create_file(temp));
    if (!file.valid()) fail("checkpoint {}: cannot create '{}'", path, temp);
    Handle link_props(H5Pcreate(H5P_LINK_CREATE));
    H5Pset_create_intermediate_group(link_props.get(), 1);
    try {
      for (const auto& [name, t] : c.params) write_tensor(file.get(), "params/" + name, t, link_props.get(), path);
      for (const auto& [name, t] : c.ema) write_tensor(file.get(), "ema/" + name, t, link_props.get(), path);
      for (const auto& [name, t] : c.optim) write_tensor(file.get(), "optim/" + name, t, link_props.get(), path);
      Handle meta(H5Gcreate2(file.get(), "meta", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
      const CheckpointMeta& m = c.meta;
      write_int(meta.get(), "format_version", m.format_version);
      write_int(meta.get(), "step", m.step);
      write_int(meta.get(), "epoch", m.epoch);
      write_int(meta.get(), "loader_epoch", m.loader_epoch);
      write_int(meta.get(), "loader_position", m.loader_position);
      write_uint(meta.get(), "loader_seed", m.loader_seed);
      write_uint(meta.get(), "rng_seed", m.rng_seed);
      write_uint(meta.get(), "rng_offset", m.rng_offset);
      write_double(meta.get(), "best_value", m.best_value);
      write_string(meta.get(), "recipe", m.recipe);
      write_string(meta.get(), "recipe_name", m.recipe_name);
      write_attribute(meta.get(), "input_shape", H5T_NATIVE_INT64, m.input_shape.data(), m.input_shape.size(), false);
      write_int(meta.get(), "num_classes", m.num_classes);
      if (H5Fflush(file.get(), H5F_SCOPE_GLOBAL) < 0)
        fail("checkpoint {}: flush failed{}", path, data::h5::disk_full_note(path));
    } catch (...) {
      file.reset();
      std::remove(temp.c_str());
      throw;
    }
  }
  move_into_place(temp, path, "checkpoint " + path);
}

namespace {

// Opens a checkpoint for reading and reads its meta attributes; throws naming the file.
Handle open_checkpoint(const std::string& path, CheckpointMeta& m) {
  data::h5::silence_errors();
  if (!std::filesystem::exists(path)) fail("checkpoint {}: no such file", path);
  if (H5Fis_hdf5(path.c_str()) <= 0) fail("checkpoint {}: not an HDF5 file", path);
  Handle file(data::h5::open_for_reading(path));
  if (!file.valid()) fail("checkpoint {}: HDF5 cannot open it (the file is truncated or corrupt)", path);
  if (!data::h5::link_exists(file.get(), "meta") || !data::h5::link_exists(file.get(), "params"))
    fail("checkpoint {}: no 'meta' and 'params' groups (not a Tessera checkpoint)", path);
  Handle meta(H5Gopen2(file.get(), "meta", H5P_DEFAULT));
  m.format_version = read_int(meta.get(), "format_version", path);
  if (m.format_version > kCheckpointFormatVersion)
    fail("checkpoint {}: format version {} is newer than this build reads ({})", path, m.format_version,
         kCheckpointFormatVersion);
  m.step = read_int(meta.get(), "step", path);
  m.epoch = read_int(meta.get(), "epoch", path);
  m.loader_epoch = read_int(meta.get(), "loader_epoch", path);
  m.loader_position = read_int(meta.get(), "loader_position", path);
  m.loader_seed = read_uint(meta.get(), "loader_seed", path);
  m.rng_seed = read_uint(meta.get(), "rng_seed", path);
  m.rng_offset = read_uint(meta.get(), "rng_offset", path);
  m.best_value = read_double(meta.get(), "best_value", path);
  m.recipe = read_string(meta.get(), "recipe", path);
  m.recipe_name = read_string(meta.get(), "recipe_name", path);
  m.num_classes = read_int(meta.get(), "num_classes", path);
  {
    Handle a = open_attribute(meta.get(), "input_shape", path);
    Handle space(H5Aget_space(a.get()));
    m.input_shape.resize(size_t(std::max<hssize_t>(0, H5Sget_simple_extent_npoints(space.get()))));
    if (!m.input_shape.empty()) check(H5Aread(a.get(), H5T_NATIVE_INT64, m.input_shape.data()), "checkpoint: input_shape");
  }
  return file;
}

}  // namespace

CheckpointMeta load_checkpoint_meta(const std::string& path) {
  CheckpointMeta m;
  open_checkpoint(path, m);
  return m;
}

Checkpoint load_checkpoint(const std::string& path) {
  Checkpoint c;
  const Handle file = open_checkpoint(path, c.meta);
  read_group(file.get(), "params", c.params, path);
  read_group(file.get(), "ema", c.ema, path);
  read_group(file.get(), "optim", c.optim, path);
  return c;
}

void require_finite_weights(const Checkpoint& checkpoint, const std::string& path) {
  for (const auto& [group, tensors] : {std::pair<const char*, const std::map<std::string, Tensor>*>{"params", &checkpoint.params},
                                       {"ema", &checkpoint.ema}})
    for (const auto& [name, t] : *tensors) {
      if (!is_floating(t.dtype())) continue;
      const std::vector<double> v = t.to_vector<double>();
      for (size_t i = 0; i < v.size(); ++i)
        if (!std::isfinite(v[i]))
          fail("checkpoint {}: {}/{} holds {} at index {}; the weights are damaged (a run that diverged?), use an "
               "earlier checkpoint", path, group, name, v[i], i);
    }
}

}  // namespace tessera::train
