#include "data/dataset.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <list>
#include <unordered_map>
#include <mutex>

#include "autograd/error.h"
#include "data/hdf5_util.h"

namespace tessera::data {

using h5::Handle;

// ---------------------------------------------------------------------------------------------
// Reading

struct Dataset::Impl {
  Handle file, images;
  std::vector<uint8_t> all_images;  // when the images fit in the memory limit
  std::vector<int64_t> labels;
  std::vector<std::string> captions;  // [N, M]
  std::vector<std::string> swapped_captions, questions, answers;  // [N], [N, Q], [N, Q]
  std::vector<float> boxes;      // [N, F, K, 4] (F = 1 for scenes)
  std::vector<int32_t> classes;  // [N, F, K]
  std::vector<int32_t> counts;   // [N, F]
  std::vector<int32_t> question_types;  // [N, Q]
  // Out of core: decoded chunks of `chunk_rows` images, most recently used first, up to the
  // memory limit, so that a set a little over the limit still hits the cache often.
  int64_t chunk_rows = 1;
  size_t cache_capacity = 1;
  std::mutex cache_mutex;
  using Entry = std::pair<int64_t, std::vector<uint8_t>>;
  std::list<Entry> cache;
  std::unordered_map<int64_t, std::list<Entry>::iterator> cached;  // chunk -> its entry
};

namespace {

[[noreturn]] void refuse(const std::string& path, const std::string& what) { fail("dataset file '{}': {}", path, what); }

std::string dims_string(const std::vector<hsize_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

Handle open_dataset(hid_t file, const std::string& path, const char* name, const char* expected) {
  if (!h5::link_exists(file, name)) refuse(path, fmt::format("no dataset '{}' (expected {})", name, expected));
  Handle d(H5Dopen2(file, name, H5P_DEFAULT));
  if (!d.valid()) refuse(path, fmt::format("cannot open '{}' as a dataset (expected {}); is the file corrupt?", name, expected));
  return d;
}

// Reads rows [start, start+count) of a [N,H,W,C] (or [N,F,H,W,C]) u8 dataset into out.
void read_rows(hid_t images, const DatasetInfo& info, int64_t start, int64_t count, uint8_t* out) {
  if (count == 0) return;
  Handle file_space(H5Dget_space(images));
  const int rank = H5Sget_simple_extent_ndims(file_space.get());
  hsize_t offset[5] = {hsize_t(start), 0, 0, 0, 0}, extent[5] = {0, 0, 0, 0, 0};
  if (rank < 4 || rank > 5 || H5Sget_simple_extent_dims(file_space.get(), extent, nullptr) != rank)
    refuse(info.path, "cannot read the shape of dataset 'images' (the file is truncated or corrupt)");
  extent[0] = hsize_t(count);
  Handle mem_space(H5Screate_simple(rank, extent, nullptr));
  if (H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, offset, nullptr, extent, nullptr) < 0 ||
      H5Dread(images, H5T_NATIVE_UINT8, mem_space.get(), file_space.get(), H5P_DEFAULT, out) < 0)
    refuse(info.path, fmt::format("cannot read dataset 'images' rows {}..{} (the file is truncated or corrupt)", start,
                                  start + count - 1));
}

void describe_layout(hid_t images, DatasetInfo& info) {
  Handle dcpl(H5Dget_create_plist(images));
  info.chunk_rows = 0;
  info.compression = "none";
  if (H5Pget_layout(dcpl.get()) == H5D_CHUNKED) {
    hsize_t chunk[5] = {0, 0, 0, 0, 0};
    const int rank = H5Pget_chunk(dcpl.get(), 5, chunk);
    if (rank == 4 || rank == 5) info.chunk_rows = int64_t(chunk[0]);
    std::string filters;
    const int n = H5Pget_nfilters(dcpl.get());
    for (int i = 0; i < n; ++i) {
      unsigned flags = 0, config = 0;
      size_t nelements = 0;
      char name[64] = {0};
      const H5Z_filter_t f = H5Pget_filter2(dcpl.get(), unsigned(i), &flags, &nelements, nullptr, sizeof name, name, &config);
      const char* label = f == H5Z_FILTER_DEFLATE ? "gzip" : f == H5Z_FILTER_SHUFFLE ? "shuffle"
                          : f == H5Z_FILTER_FLETCHER32 ? "fletcher32" : f == H5Z_FILTER_SZIP ? "szip"
                          : name[0] ? name : "filter";
      filters += (filters.empty() ? "" : "+") + std::string(label);
    }
    if (!filters.empty()) info.compression = filters;
  }
}

// Strings [N] (or, with `rows_of_many`, [N, M]) read flat.
// `unit` names one row in messages ("caption").
std::vector<std::string> read_strings(hid_t file, const std::string& path, const char* name, int64_t n, bool rows_of_many,
                                      const char* unit) {
  const char* expected = rows_of_many ? "strings [N] or [N, M]" : "strings [N]";
  Handle d = open_dataset(file, path, name, expected);
  Handle type(H5Dget_type(d.get()));
  if (H5Tget_class(type.get()) != H5T_STRING)
    refuse(path, fmt::format("dataset '{}' has type {}, expected variable-length UTF-8 strings", name, h5::type_name(type.get())));
  const std::vector<hsize_t> dims = h5::dims_of(d.get());
  if (dims.empty() || dims.size() > (rows_of_many ? 2u : 1u) || (dims.size() == 2 && dims[1] == 0))
    refuse(path, fmt::format("dataset '{}' has shape {}, expected {}", name, dims_string(dims), expected));
  if (int64_t(dims[0]) != n)
    refuse(path, fmt::format("dataset '{}' has {} entries but 'images' has {}; expected one {} per image", name, dims[0], n, unit));
  std::vector<std::string> out;
  if (!h5::read_strings_dataset(d.get(), out)) refuse(path, fmt::format("cannot read dataset '{}' (the file is truncated or corrupt)", name));
  return out;
}

// A numeric dataset of exactly `shape`, read as `memory_type` into out.
template <class T>
void read_numbers(hid_t file, const std::string& path, const char* name, H5T_class_t type_class, hid_t memory_type,
                  const std::vector<hsize_t>& shape, const char* expected, std::vector<T>& out) {
  Handle d = open_dataset(file, path, name, expected);
  Handle type(H5Dget_type(d.get()));
  if (H5Tget_class(type.get()) != type_class)
    refuse(path, fmt::format("dataset '{}' has type {}, expected {}", name, h5::type_name(type.get()), expected));
  const std::vector<hsize_t> dims = h5::dims_of(d.get());
  if (dims != shape) refuse(path, fmt::format("dataset '{}' has shape {}, expected {} = {}", name, dims_string(dims), expected, dims_string(shape)));
  size_t total = 1;
  for (hsize_t x : shape) total *= size_t(x);
  out.resize(total);
  if (total > 0 && H5Dread(d.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
    refuse(path, fmt::format("cannot read dataset '{}' (the file is truncated or corrupt)", name));
}

std::vector<std::string> string_list_attribute(hid_t object, const std::string& path, const char* object_name, const char* name) {
  if (H5Aexists(object, name) <= 0)
    refuse(path, fmt::format("dataset '{}' has no attribute '{}' (expected a list of strings)", object_name, name));
  Handle attr(H5Aopen(object, name, H5P_DEFAULT));
  std::vector<std::string> out;
  if (!attr.valid() || !h5::read_strings_attribute(attr.get(), out) || out.empty())
    refuse(path, fmt::format("attribute '{}' of dataset '{}' is not a non-empty list of strings", name, object_name));
  return out;
}

float float_attribute(hid_t object, const char* name) {
  if (H5Aexists(object, name) <= 0) return 0;
  Handle attr(H5Aopen(object, name, H5P_DEFAULT));
  double v = 0;
  return attr.valid() && H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &v) >= 0 ? float(v) : 0.f;
}

// objects/boxes, objects/classes (with class_names) and objects/count: [N, K, 4], [N, K] and [N],
// or beside clip images (`clips`: images [N, F, H, W, C]) [N, F, K, 4], [N, F, K] and [N, F].
// Shapes and types here, the values (boxes inside the image, classes in range) in verify_dataset.
void read_objects(hid_t file, DatasetInfo& info, bool clips, std::vector<float>& boxes, std::vector<int32_t>& classes,
                  std::vector<int32_t>& counts) {
  const std::string& path = info.path;
  const hsize_t n = hsize_t(info.size), frames = hsize_t(info.frames);
  std::vector<hsize_t> rows{n};  // the leading dimensions of every objects dataset
  if (clips) rows.push_back(frames);
  const std::string lead = clips ? "N, F" : "N";
  auto shape = [&](std::vector<hsize_t> rest) {
    rest.insert(rest.begin(), rows.begin(), rows.end());
    return rest;
  };
  const std::string classes_expected = fmt::format("int32 [{}, K]", lead), boxes_expected = fmt::format("float32 [{}, K, 4]", lead),
                    count_expected = fmt::format("int32 [{}]", lead);
  if (!h5::link_exists(file, "objects/classes"))
    refuse(path, fmt::format("group 'objects' has no dataset 'classes' (expected {})", classes_expected));
  {
    Handle d = open_dataset(file, path, "objects/classes", classes_expected.c_str());
    const std::vector<hsize_t> dims = h5::dims_of(d.get());
    if (dims.size() != rows.size() + 1 || !std::equal(rows.begin(), rows.end(), dims.begin()) || dims.back() == 0)
      refuse(path, clips ? fmt::format("dataset 'objects/classes' has shape {}, expected [N, F, K] with N = {} and F = {} "
                                       "(as 'images' [N, F, H, W, C])", dims_string(dims), n, frames)
                         : fmt::format("dataset 'objects/classes' has shape {}, expected [N, K] with N = {}", dims_string(dims), n));
    info.max_objects = int64_t(dims.back());
    info.object_class_names = string_list_attribute(d.get(), path, "objects/classes", "class_names");
  }
  const hsize_t k = hsize_t(info.max_objects);
  read_numbers(file, path, "objects/classes", H5T_INTEGER, H5T_NATIVE_INT32, shape({k}), classes_expected.c_str(), classes);
  read_numbers(file, path, "objects/boxes", H5T_FLOAT, H5T_NATIVE_FLOAT, shape({k, 4}), boxes_expected.c_str(), boxes);
  read_numbers(file, path, "objects/count", H5T_INTEGER, H5T_NATIVE_INT32, shape({}), count_expected.c_str(), counts);
  for (hsize_t i = 0; i < n * frames; ++i)
    if (counts[i] < 0 || counts[i] > int32_t(k))
      refuse(path, fmt::format("{}: objects/count is {}, expected 0..{} (K)",
                               clips ? fmt::format("clip {} frame {}", i / frames, i % frames) : fmt::format("scene {}", i),
                               counts[i], k));
  Handle group(H5Gopen2(file, "objects", H5P_DEFAULT));
  info.small_below = float_attribute(group.get(), "small_below");
  info.large_above = float_attribute(group.get(), "large_above");
  info.has_objects = true;
}

// questions and answers strings [N, Q] and question_types int32 [N, Q] (with names).
void read_questions(hid_t file, DatasetInfo& info, std::vector<std::string>& questions, std::vector<std::string>& answers,
                    std::vector<int32_t>& question_types) {
  const std::string& path = info.path;
  questions = read_strings(file, path, "questions", info.size, true, "row of questions");
  info.questions_per_image = int64_t(questions.size()) / info.size;
  const hsize_t n = hsize_t(info.size), q = hsize_t(info.questions_per_image);
  if (!h5::link_exists(file, "answers")) refuse(path, "has 'questions' but no dataset 'answers' (expected strings [N, Q])");
  answers = read_strings(file, path, "answers", info.size, true, "row of answers");
  if (answers.size() != questions.size())
    refuse(path, fmt::format("dataset 'answers' has {} strings, 'questions' {}; expected one answer per question",
                             answers.size(), questions.size()));
  read_numbers(file, path, "question_types", H5T_INTEGER, H5T_NATIVE_INT32, {n, q}, "int32 [N, Q]", question_types);
  Handle types(H5Dopen2(file, "question_types", H5P_DEFAULT));
  info.question_type_names = string_list_attribute(types.get(), path, "question_types", "names");
}

}  // namespace

std::shared_ptr<Dataset> Dataset::open(const std::string& path, int64_t memory_limit_bytes, bool accept_clips) {
  h5::silence_errors();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) refuse(path, "no such file");
  if (std::filesystem::is_directory(path, ec)) refuse(path, "is a directory, expected an HDF5 file");
  if (H5Fis_hdf5(path.c_str()) <= 0) refuse(path, "not an HDF5 file (no HDF5 signature; truncated or corrupt?)");

  std::shared_ptr<Dataset> ds(new Dataset());
  ds->impl_ = std::make_unique<Impl>();
  Impl& im = *ds->impl_;
  DatasetInfo& info = ds->info_;
  info.path = path;
  im.file = h5::open_for_reading(path);
  if (!im.file.valid()) refuse(path, "HDF5 cannot open it (the file is truncated or corrupt)");

  // images: uint8 [N,H,W,C], or clips [N,F,H,W,C]
  im.images = open_dataset(im.file.get(), path, "images", "uint8 [N,H,W,C] or [N,F,H,W,C]");
  bool clips = false;
  {
    Handle type(H5Dget_type(im.images.get()));
    if (H5Tget_class(type.get()) != H5T_INTEGER || H5Tget_size(type.get()) != 1 || H5Tget_sign(type.get()) != H5T_SGN_NONE)
      refuse(path, fmt::format("dataset 'images' has type {}, expected uint8", h5::type_name(type.get())));
    const std::vector<hsize_t> dims = h5::dims_of(im.images.get());
    if (dims.size() != 4 && dims.size() != 5)
      refuse(path, fmt::format("dataset 'images' has rank {} (shape {}), expected 4: [N,H,W,C] (or 5: [N,F,H,W,C] for "
                               "clips of F frames)", dims.size(), dims_string(dims)));
    clips = dims.size() == 5;
    if (clips && !accept_clips)
      refuse(path, fmt::format("dataset 'images' has shape {}: clips of {} frames, and this reads single images "
                               "[N,H,W,C]", dims_string(dims), dims[1]));
    if (dims[0] == 0) refuse(path, "dataset 'images' is empty (N = 0), expected at least one image");
    if (std::find(dims.begin() + 1, dims.end(), hsize_t(0)) != dims.end())
      refuse(path, fmt::format("dataset 'images' has shape {}, expected {} of at least 1", dims_string(dims),
                               clips ? "F, H, W and C" : "H, W and C"));
    // What the file declares, checked before it sizes anything: the products may not overflow,
    // and an uncompressed file must hold the bytes it declares (a 1 KB file declaring 10^9 images
    // is damaged, not large); a compressed one may not claim more than 1000 times its size.
    uint64_t bytes = 1;
    for (hsize_t d : dims)
      bytes = d > 0 && bytes > (uint64_t(1) << 62) / d ? (uint64_t(1) << 62) : bytes * d;
    if (bytes / dims[0] > (uint64_t(1) << 31))
      refuse(path, fmt::format("dataset 'images' has shape {}: one {} is more than 2^31 bytes", dims_string(dims),
                               clips ? fmt::format("clip of {}x{}x{}x{}", dims[1], dims[2], dims[3], dims[4])
                                     : fmt::format("image of {}x{}x{}", dims[1], dims[2], dims[3])));
    describe_layout(im.images.get(), info);
    const uint64_t stored = H5Dget_storage_size(im.images.get()), file_bytes = std::filesystem::file_size(path, ec);
    const bool compressed = info.compression != "none";
    if ((!compressed && info.chunk_rows == 0 && stored < bytes) || (compressed && bytes / 1000 > file_bytes))
      refuse(path, fmt::format("dataset 'images' declares shape {} ({} bytes) but the file holds {} bytes{}; the file is "
                               "truncated or damaged", dims_string(dims), bytes >= (uint64_t(1) << 62) ? "over 2^62" :
                               std::to_string(bytes), compressed ? file_bytes : stored, compressed ? "" : " of image data"));
    if (!compressed && info.chunk_rows > 0 && bytes > file_bytes + (uint64_t(1) << 30))
      refuse(path, fmt::format("dataset 'images' declares shape {} ({} bytes) in a file of {} bytes; the file is damaged",
                               dims_string(dims), bytes, file_bytes));
    const size_t h = clips ? 2 : 1;  // where H is
    info.size = int64_t(dims[0]), info.frames = clips ? int64_t(dims[1]) : 1;
    info.height = int64_t(dims[h]), info.width = int64_t(dims[h + 1]), info.channels = int64_t(dims[h + 2]);
  }

  // labels: integer [N] with class_names
  if (h5::link_exists(im.file.get(), "labels")) {
    Handle labels = open_dataset(im.file.get(), path, "labels", "integer [N]");
    Handle type(H5Dget_type(labels.get()));
    if (H5Tget_class(type.get()) != H5T_INTEGER)
      refuse(path, fmt::format("dataset 'labels' has type {}, expected an integer type", h5::type_name(type.get())));
    info.labels_dtype = h5::type_name(type.get());
    const std::vector<hsize_t> dims = h5::dims_of(labels.get());
    if (dims.size() != 1)
      refuse(path, fmt::format("dataset 'labels' has shape {}, expected rank 1: [N]", dims_string(dims)));
    if (int64_t(dims[0]) != info.size)
      refuse(path, fmt::format("dataset 'labels' has {} entries but 'images' has {}; expected one label per image",
                               dims[0], info.size));
    if (H5Aexists(labels.get(), "class_names") <= 0)
      refuse(path, "dataset 'labels' has no attribute 'class_names' (expected a list of strings, one per class)");
    Handle attr(H5Aopen(labels.get(), "class_names", H5P_DEFAULT));
    if (!attr.valid() || !h5::read_strings_attribute(attr.get(), info.class_names)) {
      Handle atype(H5Aget_type(attr.get()));
      refuse(path, fmt::format("attribute 'class_names' of dataset 'labels' has type {}, expected strings",
                               attr.valid() ? h5::type_name(atype.get()) : "unreadable"));
    }
    if (info.class_names.empty()) refuse(path, "attribute 'class_names' of dataset 'labels' is empty, expected at least one class");
    im.labels.resize(size_t(info.size));
    if (H5Dread(labels.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, im.labels.data()) < 0)
      refuse(path, "cannot read dataset 'labels' (the file is truncated or corrupt)");
    const int64_t classes = int64_t(info.class_names.size());
    for (int64_t i = 0; i < info.size; ++i)
      if (im.labels[size_t(i)] < 0 || im.labels[size_t(i)] >= classes)
        refuse(path, fmt::format("dataset 'labels' holds {} at index {}, expected a class index in [0, {}) "
                                 "(class_names has {} names)",
                                 im.labels[size_t(i)], i, classes, classes));
    info.has_labels = true;
  }

  // captions: strings [N] or [N, M]
  if (h5::link_exists(im.file.get(), "captions")) {
    im.captions = read_strings(im.file.get(), path, "captions", info.size, true, "caption");
    info.captions_per_image = int64_t(im.captions.size()) / info.size;
    info.has_captions = true;
  }
  if (h5::link_exists(im.file.get(), "objects")) read_objects(im.file.get(), info, clips, im.boxes, im.classes, im.counts);
  if (h5::link_exists(im.file.get(), "captions_swapped")) {
    im.swapped_captions = read_strings(im.file.get(), path, "captions_swapped", info.size, false, "swapped caption");
    info.has_swapped_captions = true;
  }
  if (h5::link_exists(im.file.get(), "questions"))
    read_questions(im.file.get(), info, im.questions, im.answers, im.question_types);

  // Images: into memory once if they fit, else read chunk-aligned on demand.
  const int64_t total = info.size * ds->image_bytes();
  if (total <= memory_limit_bytes) {
    im.all_images.resize(size_t(total));
    read_rows(im.images.get(), info, 0, info.size, im.all_images.data());
    info.images_in_memory = true;
  } else {
    // Contiguous layouts read any rows at the same cost; use ~1 MiB blocks for them.
    im.chunk_rows = info.chunk_rows > 0 ? info.chunk_rows : std::max<int64_t>(1, (1 << 20) / ds->image_bytes());
    const int64_t chunk_bytes = im.chunk_rows * ds->image_bytes();
    const int64_t budget = std::max<int64_t>(memory_limit_bytes, chunk_bytes);
    im.cache_capacity = size_t(std::max<int64_t>(budget / chunk_bytes, 16));  // at least a window's worth
  }
  return ds;
}

Dataset::~Dataset() {
  if (impl_) h5::silence_errors();
}

void Dataset::read_range(int64_t start, int64_t count, uint8_t* out) const {
  if (start < 0 || count < 0 || start + count > info_.size)
    fail("dataset file '{}': images {}..{} requested, the file has {}", info_.path, start, start + count - 1, info_.size);
  std::vector<int64_t> indices(static_cast<size_t>(count));
  for (int64_t k = 0; k < count; ++k) indices[size_t(k)] = start + k;
  read_images(indices, out);
}

void Dataset::read_images(const std::vector<int64_t>& indices, uint8_t* out) const {
  const int64_t bytes = image_bytes();
  for (int64_t i : indices)
    if (i < 0 || i >= info_.size) fail("dataset file '{}': image {} requested, the file has {}", info_.path, i, info_.size);
  Impl& im = *impl_;
  if (info_.images_in_memory) {
    for (size_t k = 0; k < indices.size(); ++k)
      std::memcpy(out + k * size_t(bytes), im.all_images.data() + size_t(indices[k] * bytes), size_t(bytes));
    return;
  }
  // Visit the requested images chunk by chunk so that each chunk is decoded once per call.
  h5::silence_errors();
  std::vector<size_t> order(indices.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return indices[a] < indices[b]; });
  std::lock_guard lock(im.cache_mutex);
  for (size_t k : order) {
    const int64_t chunk = indices[k] / im.chunk_rows;
    const auto found = im.cached.find(chunk);
    if (found == im.cached.end()) {
      const int64_t start = chunk * im.chunk_rows, count = std::min(im.chunk_rows, info_.size - start);
      std::vector<uint8_t> rows;
      if (im.cache.size() >= im.cache_capacity) {
        rows = std::move(im.cache.back().second);  // reuse the evicted buffer
        im.cached.erase(im.cache.back().first);
        im.cache.pop_back();
      }
      rows.resize(size_t(count * bytes));
      read_rows(im.images.get(), info_, start, count, rows.data());
      im.cache.emplace_front(chunk, std::move(rows));
      im.cached[chunk] = im.cache.begin();
    } else if (found->second != im.cache.begin()) {
      im.cache.splice(im.cache.begin(), im.cache, found->second);
    }
    const int64_t row = indices[k] - chunk * im.chunk_rows;
    std::memcpy(out + k * size_t(bytes), im.cache.front().second.data() + size_t(row * bytes), size_t(bytes));
  }
}

int64_t Dataset::label(int64_t i) const {
  const std::vector<int64_t>& all = labels();
  if (i < 0 || i >= info_.size) fail("dataset file '{}': label {} requested, the file has {}", info_.path, i, info_.size);
  return all[size_t(i)];
}

const std::vector<int64_t>& Dataset::labels() const {
  if (!info_.has_labels) fail("dataset file '{}' has no 'labels' dataset", info_.path);
  return impl_->labels;
}

std::string Dataset::caption(int64_t i) const { return captions(i).front(); }

namespace {

void check_index(const DatasetInfo& info, bool present, const char* what, int64_t i) {
  if (!present) fail("dataset file '{}' has no '{}'", info.path, what);
  if (i < 0 || i >= info.size) fail("dataset file '{}': {} of image {} requested, the file has {} images", info.path, what, i, info.size);
}

template <class T>
std::vector<T> row(const std::vector<T>& all, int64_t i, int64_t width) {
  return std::vector<T>(all.begin() + i * width, all.begin() + (i + 1) * width);
}

}  // namespace

std::vector<std::string> Dataset::captions(int64_t i) const {
  check_index(info_, info_.has_captions, "captions", i);
  return row(impl_->captions, i, info_.captions_per_image);
}

std::string Dataset::swapped_caption(int64_t i) const {
  check_index(info_, info_.has_swapped_captions, "captions_swapped", i);
  return impl_->swapped_captions[size_t(i)];
}

ObjectsView Dataset::objects(int64_t i) const {
  if (info_.frames > 1)
    fail("dataset file '{}' holds clips of {} frames, each with its own objects; use objects(i, frame)", info_.path,
         info_.frames);
  return objects(i, 0);
}

ObjectsView Dataset::objects(int64_t i, int64_t frame) const {
  check_index(info_, info_.has_objects, "objects", i);
  if (frame < 0 || frame >= info_.frames)
    fail("dataset file '{}': objects of frame {} of sample {} requested, a sample has {} frames", info_.path, frame, i,
         info_.frames);
  const int64_t k = info_.max_objects, row = i * info_.frames + frame;
  return {impl_->counts[size_t(row)], impl_->boxes.data() + row * k * 4, impl_->classes.data() + row * k};
}

std::vector<std::string> Dataset::questions(int64_t i) const {
  check_index(info_, info_.questions_per_image > 0, "questions", i);
  return row(impl_->questions, i, info_.questions_per_image);
}

std::vector<std::string> Dataset::answers(int64_t i) const {
  check_index(info_, info_.questions_per_image > 0, "answers", i);
  return row(impl_->answers, i, info_.questions_per_image);
}

std::vector<int32_t> Dataset::question_types(int64_t i) const {
  check_index(info_, info_.questions_per_image > 0, "question_types", i);
  return row(impl_->question_types, i, info_.questions_per_image);
}

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    const int extra = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2 : (c >> 3) == 0x1E ? 3 : -1;
    if (extra < 0 || (extra == 1 && c < 0xC2) || i + size_t(extra) >= s.size()) return false;
    for (int k = 1; k <= extra; ++k)
      if ((static_cast<unsigned char>(s[i + size_t(k)]) >> 6) != 0x2) return false;
    i += size_t(extra) + 1;
  }
  return true;
}

namespace {

// The invariants of scene files (docs/DATA.md), one line per breach naming the scene (the clip
// and, for its objects, the frame); after kMaxBreaches lines, only a count of the rest.
void check_scenes(const Dataset& ds, std::vector<std::string>& breaches) {
  constexpr size_t kMaxBreaches = 20;
  const DatasetInfo& info = ds.info();
  const bool clips = info.frames > 1;
  int64_t more = 0;
  auto breach_at = [&](const std::string& where, const std::string& what) {
    if (breaches.size() < kMaxBreaches) breaches.push_back(fmt::format("dataset file '{}': {}: {}", info.path, where, what));
    else ++more;
  };
  auto breach = [&](int64_t sample, const std::string& what) { breach_at(fmt::format("{} {}", clips ? "clip" : "scene", sample), what); };
  const int64_t classes = int64_t(info.object_class_names.size());
  for (int64_t i = 0; info.has_objects && i < info.size; ++i)
    for (int64_t f = 0; f < info.frames; ++f) {
      const ObjectsView v = ds.objects(i, f);
      // Named only when something is wrong: verify visits every frame of every sample.
      auto where = [&] { return clips ? fmt::format("clip {} frame {}", i, f) : fmt::format("scene {}", i); };
      for (int64_t k = 0; k < info.max_objects; ++k) {
        const float* b = v.boxes + 4 * k;
        const int32_t c = v.classes[k];
        if (k >= v.count) {
          if (c != -1) breach_at(where(), fmt::format("objects/classes[{}] is {} after the scene's {} objects, expected -1", k, c, v.count));
          continue;
        }
        if (c < 0 || c >= classes)
          breach_at(where(), fmt::format("object {} has class {}, expected 0..{} (objects/classes has {} class names)", k, c,
                                       classes - 1, classes));
        const bool inside = std::isfinite(b[0]) && std::isfinite(b[1]) && std::isfinite(b[2]) && std::isfinite(b[3]) &&
                            b[0] >= 0 && b[1] >= 0 && b[0] < b[2] && b[1] < b[3] && b[2] <= float(info.height) &&
                            b[3] <= float(info.width);
        if (!inside)
          breach_at(where(), fmt::format("object {} has box (y_min {}, x_min {}, y_max {}, x_max {}), expected a non-empty box "
                                       "inside the {}x{} image", k, b[0], b[1], b[2], b[3], info.height, info.width));
      }
    }
  for (int64_t i = 0; info.has_captions && info.has_objects && i < info.size; ++i)
    for (const std::string& c : ds.captions(i))
      if (c.empty()) breach(i, "has an empty caption");
  const int64_t types = int64_t(info.question_type_names.size());
  for (int64_t i = 0; info.questions_per_image > 0 && i < info.size; ++i) {
    const auto questions = ds.questions(i), answers = ds.answers(i);
    const auto type_ids = ds.question_types(i);
    for (size_t q = 0; q < questions.size(); ++q) {
      if (questions[q].empty() || answers[q].empty()) breach(i, fmt::format("question {} or its answer is empty", q));
      if (type_ids[q] < 0 || type_ids[q] >= types)
        breach(i, fmt::format("question {} has type {}, expected 0..{} (question_types names)", q, type_ids[q], types - 1));
      if (!valid_utf8(questions[q]) || !valid_utf8(answers[q])) breach(i, fmt::format("question {} or its answer is not valid UTF-8", q));
    }
  }
  if (more > 0) breaches.push_back(fmt::format("dataset file '{}': ... and {} more breaches", info.path, more));
}

}  // namespace

std::vector<std::string> verify_dataset(const std::string& path) {
  std::vector<std::string> breaches;
  try {
    // Open without loading, then decode every chunk so that checksums and compression are checked.
    const std::shared_ptr<Dataset> ds = Dataset::open(path, 0, true);
    const DatasetInfo& info = ds->info();
    const int64_t step = std::max<int64_t>(info.chunk_rows, 256);
    std::vector<uint8_t> buffer(size_t(step * ds->image_bytes()));
    for (int64_t start = 0; start < info.size; start += step)
      ds->read_range(start, std::min(step, info.size - start), buffer.data());
    // Strings must be UTF-8 (h5py and the writer store them so; other tools may not).
    for (size_t k = 0; k < info.class_names.size(); ++k)
      if (!valid_utf8(info.class_names[k]))
        breaches.push_back(fmt::format("dataset file '{}': class name {} of dataset 'labels' is not valid UTF-8", path, k));
    for (int64_t i = 0; info.has_captions && i < info.size; ++i)
      if (const auto captions = ds->captions(i); !std::all_of(captions.begin(), captions.end(), valid_utf8)) {
        breaches.push_back(fmt::format("dataset file '{}': caption {} of dataset 'captions' is not valid UTF-8", path, i));
        break;
      }
    check_scenes(*ds, breaches);
  } catch (const Error& e) {
    breaches.emplace_back(e.what());
  }
  return breaches;
}

// ---------------------------------------------------------------------------------------------
// Writing

struct DatasetWriter::Impl {
  Handle file, images, labels, captions;
};

namespace {

int64_t chunk_rows_for(int64_t image_bytes) {
  // ~64 KiB chunks: small enough that a random read out of core decodes little, large enough to compress.
  return std::clamp<int64_t>((64 << 10) / std::max<int64_t>(image_bytes, 1), 1, 1024);
}

Handle create_extendible(hid_t file, const char* name, hid_t type, const std::vector<hsize_t>& row_shape,
                         hsize_t chunk_rows, bool compress) {
  std::vector<hsize_t> dims{0}, max_dims{H5S_UNLIMITED}, chunk{chunk_rows};
  for (hsize_t d : row_shape) dims.push_back(d), max_dims.push_back(d), chunk.push_back(d);
  Handle space(H5Screate_simple(int(dims.size()), dims.data(), max_dims.data()));
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
  H5Pset_obj_track_times(dcpl.get(), false);  // no time stamps: the same data, the same bytes
  H5Pset_chunk(dcpl.get(), int(chunk.size()), chunk.data());
  if (compress) {
    H5Pset_fletcher32(dcpl.get());  // corruption is detected on read, not returned as pixels
    H5Pset_deflate(dcpl.get(), 4);
  }
  return Handle(H5Dcreate2(file, name, type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT));
}

// Grows a 1-D or N-D dataset by n rows and writes `data` (memory type `mem_type`) into them.
bool append_rows(hid_t dataset, hid_t mem_type, int64_t old_rows, int64_t n, const void* data) {
  Handle space(H5Dget_space(dataset));
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  dims[0] = hsize_t(old_rows + n);
  if (H5Dset_extent(dataset, dims.data()) < 0) return false;
  Handle file_space(H5Dget_space(dataset));
  std::vector<hsize_t> offset(size_t(rank), 0), count = dims;
  offset[0] = hsize_t(old_rows), count[0] = hsize_t(n);
  Handle mem_space(H5Screate_simple(rank, count.data(), nullptr));
  return H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, offset.data(), nullptr, count.data(), nullptr) >= 0 &&
         H5Dwrite(dataset, mem_type, mem_space.get(), file_space.get(), H5P_DEFAULT, data) >= 0;
}

}  // namespace

namespace {
// A writer killed before it renamed its file leaves PATH.tmp-PID-K behind; the next writer of PATH
// removes those whose process is gone (a live one may still be writing).
void remove_stale_temporaries(const std::string& path) {
  const std::filesystem::path target(path);
  const std::filesystem::path folder = target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  const std::string prefix = target.filename().string() + ".tmp-";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
    if (pid > 0 && ::kill(pid_t(pid), 0) != 0 && errno == ESRCH) std::filesystem::remove(entry.path(), ec);
  }
}
}  // namespace

DatasetWriter::DatasetWriter(const std::string& path, int64_t height, int64_t width, int64_t channels,
                             std::vector<std::string> class_names, bool with_captions)
    : path_(path), height_(height), width_(width), channels_(channels), class_names_(std::move(class_names)),
      with_captions_(with_captions), impl_(std::make_unique<Impl>()) {
  h5::silence_errors();
  if (height < 1 || width < 1 || channels < 1)
    fail("dataset file '{}': cannot write images of shape [H={},W={},C={}]", path, height, width, channels);
  remove_stale_temporaries(path);
  static std::atomic<int> writers{0};  // distinct temporary names within one process too
  temp_path_ = path + ".tmp-" + std::to_string(getpid()) + "-" + std::to_string(writers++);
  impl_->file = Handle(h5::create_file(temp_path_));
  if (!impl_->file.valid())
    fail("dataset file '{}': cannot create '{}'{}", path, temp_path_,
         h5::disk_full_note(path).empty() ? " (does the folder exist and is it writable?)" : h5::disk_full_note(path));
  const hid_t file = impl_->file.get();
  impl_->images = create_extendible(file, "images", H5T_STD_U8LE, {hsize_t(height), hsize_t(width), hsize_t(channels)},
                                    hsize_t(chunk_rows_for(height * width * channels)), true);
  bool ok = impl_->images.valid();
  if (ok && !class_names_.empty()) {
    impl_->labels = create_extendible(file, "labels", H5T_STD_I64LE, {}, 4096, true);
    Handle type = h5::utf8_string_type();
    const hsize_t n = class_names_.size();
    Handle space(H5Screate_simple(1, &n, nullptr));
    Handle attr(H5Acreate2(impl_->labels.get(), "class_names", type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
    std::vector<const char*> names;
    for (const std::string& s : class_names_) names.push_back(s.c_str());
    ok = impl_->labels.valid() && attr.valid() && H5Awrite(attr.get(), type.get(), names.data()) >= 0;
  }
  if (ok && with_captions_) {
    Handle type = h5::utf8_string_type();
    // Strings live in the global heap; filters would only see their heap references.
    impl_->captions = create_extendible(file, "captions", type.get(), {}, 1024, false);
    ok = impl_->captions.valid();
  }
  if (!ok) {
    impl_.reset();
    std::filesystem::remove(temp_path_);
    fail("dataset file '{}': cannot create its datasets in '{}'", path, temp_path_);
  }
}

DatasetWriter::~DatasetWriter() {
  if (impl_) {
    h5::silence_errors();
    impl_.reset();
    std::error_code ec;
    std::filesystem::remove(temp_path_, ec);
  }
}

void DatasetWriter::append(const uint8_t* images, int64_t n, const int64_t* labels,
                           const std::vector<std::string>* captions) {
  if (!impl_) fail("dataset file '{}': append after close", path_);
  if (n < 0) fail("dataset file '{}': cannot append {} images", path_, n);
  if (n == 0) return;
  if (!class_names_.empty()) {
    if (!labels) fail("dataset file '{}': has class names, so append needs labels", path_);
    for (int64_t i = 0; i < n; ++i)
      if (labels[i] < 0 || labels[i] >= int64_t(class_names_.size()))
        fail("dataset file '{}': label {} of image {} is outside class_names [0, {})", path_, labels[i], size_ + i,
             class_names_.size());
  }
  if (with_captions_ && (!captions || int64_t(captions->size()) != n))
    fail("dataset file '{}': append of {} images needs {} captions, got {}", path_, n, n, captions ? captions->size() : 0);
  h5::silence_errors();
  bool ok = append_rows(impl_->images.get(), H5T_NATIVE_UINT8, size_, n, images);
  if (ok && !class_names_.empty()) ok = append_rows(impl_->labels.get(), H5T_NATIVE_INT64, size_, n, labels);
  if (ok && with_captions_) {
    std::vector<const char*> pointers;
    for (const std::string& s : *captions) pointers.push_back(s.c_str());
    Handle type = h5::utf8_string_type();
    ok = append_rows(impl_->captions.get(), type.get(), size_, n, pointers.data());
  }
  if (!ok) fail("dataset file '{}': writing {} images to '{}' failed{}", path_, n, temp_path_, h5::disk_full_note(path_));
  size_ += n;
}

void DatasetWriter::close() {
  if (!impl_) fail("dataset file '{}': closed twice", path_);
  h5::silence_errors();
  if (!written_by_.empty()) h5::mark_written_by(impl_->file.get(), written_by_);
  const bool flushed = H5Fflush(impl_->file.get(), H5F_SCOPE_GLOBAL) >= 0;
  impl_.reset();  // closes every handle, the file last
  std::error_code ec;
  if (!flushed) {
    std::filesystem::remove(temp_path_, ec);
    fail("dataset file '{}': cannot flush '{}'{}", path_, temp_path_, h5::disk_full_note(path_));
  }
  std::filesystem::rename(temp_path_, path_, ec);
  if (ec) {
    std::filesystem::remove(temp_path_, ec);
    fail("dataset file '{}': cannot move '{}' into place: {}", path_, temp_path_, ec.message());
  }
}

}  // namespace tessera::data
