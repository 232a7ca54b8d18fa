#include "data/hdf5_util.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "autograd/error.h"

namespace tessera::data::h5 {

void skip_library_teardown_at_exit() { H5dont_atexit(); }

std::string disk_full_note(const std::string& path) {
  std::filesystem::path folder = std::filesystem::path(path).parent_path();
  if (folder.empty()) folder = ".";
  struct statvfs fs {};
  if (::statvfs(folder.c_str(), &fs) != 0) return "";
  const uint64_t free_bytes = uint64_t(fs.f_bavail) * uint64_t(fs.f_frsize);
  if (free_bytes >= (uint64_t(4) << 20)) return "";
  return fmt::format("; the disk holding it is full ({} bytes free in {})", free_bytes, folder.string());
}

hid_t create_file(const std::string& path) {
  Handle access(H5Pcreate(H5P_FILE_ACCESS));
  H5Pset_libver_bounds(access.get(), H5F_LIBVER_V18, H5F_LIBVER_LATEST);
  // That format's object headers hold time stamps when tracked (HDF5's default); without them the
  // same arguments write the same bytes (data import scenes promises it).
  Handle creation(H5Pcreate(H5P_FILE_CREATE));
  H5Pset_obj_track_times(creation.get(), false);
  return H5Fcreate(path.c_str(), H5F_ACC_TRUNC, creation.get(), access.get());
}

namespace {
char last_opened[4096];  // a fixed buffer: read by a signal handler
}  // namespace

Handle open_for_reading(const std::string& path) {
  const size_t n = std::min(path.size(), sizeof last_opened - 1);
  last_opened[n] = '\0';
  std::memcpy(last_opened, path.data(), n);
  return Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
}

const char* last_file_opened() { return last_opened; }

uint64_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) : UINT64_MAX;
}

namespace {
// An existing file that HDF5 opens, or an invalid Handle (no such file, not HDF5, unreadable).
Handle open_if_hdf5(const std::string& path) {
  silence_errors();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec) || H5Fis_hdf5(path.c_str()) <= 0) return Handle();
  return open_for_reading(path);
}
}  // namespace

std::string written_by(const std::string& path) {
  const Handle file = open_if_hdf5(path);
  if (!file.valid() || H5Aexists(file.get(), kWrittenBy) <= 0) return "";
  Handle attr(H5Aopen(file.get(), kWrittenBy, H5P_DEFAULT));
  std::vector<std::string> values;
  return attr.valid() && read_strings_attribute(attr.get(), values) && values.size() == 1 ? values[0] : "";
}

void refuse_data_set_as_output(const std::string& output) {
  const Handle file = open_if_hdf5(output);
  if (file.valid() && link_exists(file.get(), "images"))
    fail("the output {} is an image data set; it is not replaced (choose another output path)", output);
}

void refuse_to_replace(const std::string& output, const std::string& command, bool overwrite) {
  std::error_code ec;
  if (overwrite || !std::filesystem::exists(output, ec)) return;
  if (std::filesystem::is_directory(output, ec)) fail("the output {} is a folder; give a file path", output);
  const std::string writer = written_by(output);
  if (writer == command) return;
  fail("{} exists and was {}; pass --overwrite to replace it", output,
       writer.empty() ? fmt::format("not written by {}", command) : fmt::format("written by {}, not {}", writer, command));
}

void mark_written_by(hid_t file, const std::string& command) {
  write_attribute(file, kWrittenBy, std::vector<std::string>{command});
}

void silence_errors() {
  thread_local bool done = false;
  if (!done) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    done = true;
  }
}

void Handle::reset() {
  if (id_ < 0) return;
  switch (H5Iget_type(id_)) {
    case H5I_FILE: H5Fclose(id_); break;
    case H5I_GROUP: H5Gclose(id_); break;
    case H5I_DATASET: H5Dclose(id_); break;
    case H5I_DATASPACE: H5Sclose(id_); break;
    case H5I_DATATYPE: H5Tclose(id_); break;
    case H5I_ATTR: H5Aclose(id_); break;
    case H5I_GENPROP_LST: H5Pclose(id_); break;
    default: break;
  }
  id_ = -1;
}

std::string type_name(hid_t type) {
  const size_t size = H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(8 * size);
    case H5T_FLOAT: return "float" + std::to_string(8 * size);
    case H5T_STRING: return H5Tis_variable_str(type) > 0 ? "variable-length string" : "fixed-length string";
    case H5T_COMPOUND: return "compound";
    case H5T_ENUM: return "enum";
    case H5T_ARRAY: return "array";
    case H5T_VLEN: return "variable-length sequence";
    case H5T_OPAQUE: return "opaque";
    case H5T_BITFIELD: return "bitfield";
    case H5T_REFERENCE: return "reference";
    default: return "unknown type";
  }
}

bool link_exists(hid_t location, const char* name) { return H5Lexists(location, name, H5P_DEFAULT) > 0; }

namespace {

// Reads n strings from an attribute or dataset whose file type is `file_type`, with `read`
// doing the H5Aread/H5Dread into a buffer of the given memory type.
template <class Read>
bool read_strings(hid_t file_type, hid_t space, Read&& read, std::vector<std::string>& out) {
  if (file_type < 0 || space < 0 || H5Tget_class(file_type) != H5T_STRING) return false;
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank > 2 || rank < 0) return false;  // [N] or [N, M], read flat
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  if (n < 0) return false;
  const bool variable = H5Tis_variable_str(file_type) > 0;
  const size_t width = variable ? sizeof(char*) : H5Tget_size(file_type);
  if (width == 0 || uint64_t(n) > physical_memory_bytes() / width) return false;  // a damaged count
  out.clear();
  Handle mem(H5Tcopy(H5T_C_S1));
  H5Tset_cset(mem.get(), H5Tget_cset(file_type));
  if (variable) {
    H5Tset_size(mem.get(), H5T_VARIABLE);
    std::vector<char*> pointers(size_t(n), nullptr);
    if (n > 0 && read(mem.get(), pointers.data()) < 0) {
      for (char* p : pointers) H5free_memory(p);  // the strings HDF5 made before it failed
      return false;
    }
    for (char* p : pointers) out.emplace_back(p ? p : "");
    if (n > 0) H5Dvlen_reclaim(mem.get(), space, H5P_DEFAULT, pointers.data());
  } else {
    H5Tset_size(mem.get(), width);
    H5Tset_strpad(mem.get(), H5T_STR_NULLPAD);
    std::vector<char> buffer(size_t(n) * width + 1, 0);
    if (n > 0 && read(mem.get(), buffer.data()) < 0) return false;
    for (hssize_t i = 0; i < n; ++i) {
      const char* s = buffer.data() + size_t(i) * width;
      size_t len = strnlen(s, width);
      while (len > 0 && s[len - 1] == ' ') --len;  // space-padded strings
      out.emplace_back(s, len);
    }
  }
  return true;
}

}  // namespace

bool read_strings_attribute(hid_t attribute, std::vector<std::string>& out) {
  Handle type(H5Aget_type(attribute)), space(H5Aget_space(attribute));
  return read_strings(type.get(), space.get(), [&](hid_t mem, void* buf) { return H5Aread(attribute, mem, buf); },
                      out);
}

bool read_strings_dataset(hid_t dataset, std::vector<std::string>& out) {
  Handle type(H5Dget_type(dataset)), space(H5Dget_space(dataset));
  return read_strings(type.get(), space.get(),
                      [&](hid_t mem, void* buf) { return H5Dread(dataset, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf); },
                      out);
}

Handle utf8_string_type() {
  Handle t(H5Tcopy(H5T_C_S1));
  H5Tset_size(t.get(), H5T_VARIABLE);
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  return t;
}

void write_attribute(hid_t object, const char* name, const std::string& value) {
  Handle type = utf8_string_type();
  Handle space(H5Screate(H5S_SCALAR));
  Handle attr(H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
  const char* p = value.c_str();
  if (!attr.valid() || H5Awrite(attr.get(), type.get(), &p) < 0) fail("cannot write attribute '{}'", name);
}

void write_attribute(hid_t object, const char* name, int64_t value) {
  Handle space(H5Screate(H5S_SCALAR));
  Handle attr(H5Acreate2(object, name, H5T_NATIVE_INT64, space.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.valid() || H5Awrite(attr.get(), H5T_NATIVE_INT64, &value) < 0) fail("cannot write attribute '{}'", name);
}

void write_attribute(hid_t object, const char* name, double value) {
  Handle space(H5Screate(H5S_SCALAR));
  Handle attr(H5Acreate2(object, name, H5T_NATIVE_DOUBLE, space.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.valid() || H5Awrite(attr.get(), H5T_NATIVE_DOUBLE, &value) < 0) fail("cannot write attribute '{}'", name);
}

void write_attribute(hid_t object, const char* name, const std::vector<int64_t>& values) {
  const hsize_t n = values.size();
  Handle space(H5Screate_simple(1, &n, nullptr));
  Handle attr(H5Acreate2(object, name, H5T_NATIVE_INT64, space.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.valid() || H5Awrite(attr.get(), H5T_NATIVE_INT64, values.data()) < 0) fail("cannot write attribute '{}'", name);
}

void write_attribute(hid_t object, const char* name, const std::vector<std::string>& values) {
  Handle type = utf8_string_type();
  const hsize_t n = values.size();
  Handle space(H5Screate_simple(1, &n, nullptr));
  Handle attr(H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
  std::vector<const char*> p;
  for (const auto& v : values) p.push_back(v.c_str());
  if (!attr.valid() || H5Awrite(attr.get(), type.get(), p.data()) < 0) fail("cannot write attribute '{}'", name);
}

void check(herr_t status, const std::string& what) {
  if (status < 0) fail("{}", what);
}

std::vector<hsize_t> dims_of(hid_t dataset) {
  Handle space(H5Dget_space(dataset));
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(size_t(std::max(rank, 0)));
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

std::string string_attribute(hid_t object, const char* name) {
  if (H5Aexists(object, name) <= 0) return "";
  Handle attr(H5Aopen(object, name, H5P_DEFAULT));
  std::vector<std::string> v;
  return read_strings_attribute(attr.get(), v) && v.size() == 1 ? v[0] : "";
}

namespace {

// The hyperslab of rows [start, start + count) of a dataset of extent `dims`.
Handle select_rows(hid_t dataset, std::vector<hsize_t> dims, hsize_t start, hsize_t count, const std::string& where) {
  std::vector<hsize_t> offset(dims.size(), 0);
  offset[0] = start, dims[0] = count;
  Handle file_space(H5Dget_space(dataset));
  check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, offset.data(), nullptr, dims.data(), nullptr),
        where + ": cannot select rows");
  return file_space;
}

Handle memory_space_of_rows(std::vector<hsize_t> dims, hsize_t count) {
  dims[0] = count;
  return Handle(H5Screate_simple(int(dims.size()), dims.data(), nullptr));
}

}  // namespace

RowWriter::RowWriter(hid_t file, const char* name, hid_t file_type, std::vector<hsize_t> dims, const std::string& path,
                     bool compress)
    : dims_(std::move(dims)), where_(fmt::format("{}: dataset '{}'", path, name)), path_(path) {
  if (dims_.empty()) fail("{}: a row dataset needs at least one dimension", where_);
  Handle space(H5Screate_simple(int(dims_.size()), dims_.data(), nullptr));
  Handle props(H5Pcreate(H5P_DATASET_CREATE));
  check(H5Pset_obj_track_times(props.get(), false), where_ + ": cannot set properties");  // same data, same bytes
  if (dims_[0] > 0) {
    hsize_t row_bytes = H5Tget_size(file_type);
    for (size_t d = 1; d < dims_.size(); ++d) row_bytes *= std::max<hsize_t>(dims_[d], 1);
    std::vector<hsize_t> chunk = dims_;
    chunk[0] = std::clamp<hsize_t>((hsize_t(1) << 20) / std::max<hsize_t>(row_bytes, 1), 1, dims_[0]);
    check(H5Pset_chunk(props.get(), int(chunk.size()), chunk.data()), where_ + ": cannot chunk");
    if (compress) check(H5Pset_deflate(props.get(), 4), where_ + ": cannot compress");
  }
  H5Pset_obj_track_times(props.get(), false);  // no time stamps: the same data, the same bytes
  dataset_ = Handle(H5Dcreate2(file, name, file_type, space.get(), H5P_DEFAULT, props.get(), H5P_DEFAULT));
  if (!dataset_.valid()) fail("{}: cannot create", where_);
}

void RowWriter::write(hid_t memory_type, hsize_t start, hsize_t count, const void* rows) {
  if (count == 0) return;
  if (start + count > dims_[0]) fail("{}: rows [{}, {}) are outside its {} rows", where_, start, start + count, dims_[0]);
  const Handle file_space = select_rows(dataset_.get(), dims_, start, count, where_);
  const Handle memory_space = memory_space_of_rows(dims_, count);
  if (H5Dwrite(dataset_.get(), memory_type, memory_space.get(), file_space.get(), H5P_DEFAULT, rows) < 0)
    fail("{}: cannot write{}", where_, disk_full_note(path_));
}

void read_rows(hid_t dataset, hid_t memory_type, hsize_t start, hsize_t count, void* out, const std::string& where) {
  if (count == 0) return;
  const std::vector<hsize_t> dims = dims_of(dataset);
  if (dims.empty() || start + count > dims[0]) fail("{}: rows [{}, {}) are outside the dataset", where, start, start + count);
  const Handle file_space = select_rows(dataset, dims, start, count, where);
  const Handle memory_space = memory_space_of_rows(dims, count);
  check(H5Dread(dataset, memory_type, memory_space.get(), file_space.get(), H5P_DEFAULT, out), where + ": cannot read");
}

void refuse_same_file(const std::string& input, const std::string& output, const char* role) {
  std::error_code error;
  if (std::filesystem::exists(output) && std::filesystem::equivalent(input, output, error))
    fail("the output {} is the {}; choose another", output, role);
}

void write_atomically(const std::string& path, const std::function<void(hid_t file)>& fill) {
  silence_errors();
  const std::string temp = path + ".tmp";
  {
    Handle file(create_file(temp));
    if (!file.valid()) fail("cannot create {}{}", temp, disk_full_note(temp));
    try {
      fill(file.get());
      if (H5Fflush(file.get(), H5F_SCOPE_GLOBAL) < 0) fail("flush of {} failed", temp);
    } catch (...) {
      file.reset();
      std::remove(temp.c_str());
      throw;
    }
  }
  std::error_code error;
  std::filesystem::rename(temp, path, error);
  if (error) {
    std::remove(temp.c_str());
    fail("cannot move {} into place as {}: {}", temp, path, error.message());
  }
}

}  // namespace tessera::data::h5
