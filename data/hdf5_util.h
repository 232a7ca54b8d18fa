#pragma once
// Small helpers around the HDF5 C API used by data/ (and usable by checkpoints): an owning
// handle, and silencing HDF5's own error printing so that our messages are the only ones.
#include <hdf5.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace tessera::data::h5 {

// HDF5 keeps its error-printing switch per thread: call before HDF5 calls on any thread.
void silence_errors();
// Called first thing in main(): HDF5's own teardown at exit closes every file id still open, and
// on a file whose close already failed (a full disk) it crashes. Our files are closed by their
// owners (data::h5::Handle); what is left after an error is a temporary file, deleted anyway.
void skip_library_teardown_at_exit();
// After a failed write to `path`: "; the disk holding it is full (N bytes free)" when its file
// system has (almost) no room left, else "" — so that a full disk is reported as one.
std::string disk_full_note(const std::string& path);
// Outputs that are data sets name the command that wrote them in the root attribute `written_by`
// ("tessera decode"), so that a later run of that command may replace them while any other data
// set — a training set, say — is kept.
constexpr const char* kWrittenBy = "written_by";
// Creates an HDF5 file (truncating) in the file format of HDF5 1.8 and later, whose metadata
// (superblock, object headers, B-trees) carries checksums: a damaged file Tessera wrote is then
// refused by HDF5 with an error, where the older format (HDF5's default) can make libhdf5 1.10
// read out of bounds (tests/fuzz found such files). Readable by HDF5 >= 1.8 and h5py.
hid_t create_file(const std::string& path);
// The bytes of memory this machine has: what a file declares is checked against it before
// anything is sized by it.
uint64_t physical_memory_bytes();
// The `written_by` of an existing HDF5 file ("" when absent or not HDF5).
std::string written_by(const std::string& path);
// Throws when `output` is an existing image data set (it holds `images`): commands whose outputs
// are not data sets (tokenize, predict, embed) never replace one, even with --overwrite.
void refuse_data_set_as_output(const std::string& output);
// The rule for every output file: an existing `output` is replaced only when an earlier run of
// the same `command` wrote it (its written_by), or when the user said --overwrite; otherwise this
// throws, naming the file and what wrote it. Commands call it before they write anything.
void refuse_to_replace(const std::string& output, const std::string& command, bool overwrite);
// Writes the root attribute `written_by` = command into an open file.
void mark_written_by(hid_t file, const std::string& command);

// Owns one HDF5 id and closes it with the right H5?close for its kind.
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  ~Handle() { reset(); }
  Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, -1)) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) reset(), id_ = std::exchange(other.id_, -1);
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset();

 private:
  hid_t id_ = -1;
};

// Opens an HDF5 file read-only (an invalid Handle when HDF5 cannot), first noting its path where a
// signal handler can read it (last_file_opened): libhdf5 1.10 can itself fault on a damaged file,
// and then train/main.cpp names the file rather than dying with a bare segmentation fault.
Handle open_for_reading(const std::string& path);
// The path given to the latest open_for_reading ("" before any); async-signal-safe.
const char* last_file_opened();

// A short description of an HDF5 datatype ("uint8", "int64", "float32", "string", ...).
std::string type_name(hid_t type);
bool link_exists(hid_t location, const char* name);
// Strings of a string-typed attribute or dataset (fixed or variable length). Returns false if
// the object is not a string type; throws nothing, HDF5 failures also return false.
bool read_strings_attribute(hid_t attribute, std::vector<std::string>& out);
bool read_strings_dataset(hid_t dataset, std::vector<std::string>& out);
// A variable-length UTF-8 string type (caller owns it).
Handle utf8_string_type();

// Attributes on a file, group or dataset; a failure throws an Error naming the attribute.
void write_attribute(hid_t object, const char* name, const std::string& value);
void write_attribute(hid_t object, const char* name, int64_t value);                       // scalar
void write_attribute(hid_t object, const char* name, double value);                        // scalar
void write_attribute(hid_t object, const char* name, const std::vector<int64_t>& values);  // 1-D
void write_attribute(hid_t object, const char* name, const std::vector<std::string>& values);

// Throws an Error saying `what` when an HDF5 call returned a negative status.
void check(herr_t status, const std::string& what);
// The dimensions of a dataset's extent ([] for a scalar).
std::vector<hsize_t> dims_of(hid_t dataset);
// A string attribute of a file, group or dataset, or "" when it is absent or not one string.
std::string string_attribute(hid_t object, const char* name);

// A new dataset of shape dims = [N, ...] filled row by row (a row is one index of the first
// dimension), chunked along the rows (about 1 MiB a chunk) and, with `compress`, deflated.
// Errors name `where` (e.g. "out.h5: dataset 'tokens'").
class RowWriter {
 public:
  RowWriter(hid_t file, const char* name, hid_t file_type, std::vector<hsize_t> dims, const std::string& path,
            bool compress = false);
  // Rows [start, start + count) from contiguous memory of type `memory_type`.
  void write(hid_t memory_type, hsize_t start, hsize_t count, const void* rows);
  hid_t id() const { return dataset_.get(); }

 private:
  std::vector<hsize_t> dims_;
  std::string where_, path_;
  Handle dataset_;
};

// Rows [start, start + count) of a dataset read into contiguous memory of type `memory_type`.
void read_rows(hid_t dataset, hid_t memory_type, hsize_t start, hsize_t count, void* out, const std::string& where);

// Refuses (with an Error) to write `output` over `input`, a file being read (`role` names it).
void refuse_same_file(const std::string& input, const std::string& output, const char* role = "input file");
// Creates `path`.tmp, fills it through fill(file), and renames it to `path`. On any failure the
// temporary file is removed and an existing `path` is left as it was.
void write_atomically(const std::string& path, const std::function<void(hid_t file)>& fill);

}  // namespace tessera::data::h5
