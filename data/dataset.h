#pragma once
// Image datasets on disk (HDF5), the schema of docs/DESIGN.md:
//   images    uint8 [N,H,W,C]  (chunked and compressed when Tessera writes it), or [N,F,H,W,C]:
//             clips of F frames, a sample being a whole clip
//   labels    any integer type [N], attribute `class_names` (strings), 0 <= label < len(class_names)
//   captions  strings [N], or [N, M] for M captions per image (variable-length UTF-8 when Tessera writes it)
// Scene files (docs/DATA.md) add objects/boxes float32 [N,K,4], objects/classes int32 [N,K] (-1:
// none; attribute class_names), objects/count int32 [N], captions_swapped strings [N], and
// questions / answers strings [N,Q] with question_types int32 [N,Q] (attribute names). Clip
// files (rank-5 images) have objects per frame: boxes [N,F,K,4], classes [N,F,K], count [N,F].
// Files written by h5py/numpy with this schema open unchanged. A file that breaks it is refused
// with a tessera::Error naming the file, the dataset and what was expected.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tessera::data {

struct DatasetInfo {
  std::string path;
  int64_t size = 0, height = 0, width = 0, channels = 0;
  int64_t frames = 1;           // F: 1 for images [N,H,W,C]; a clip's frames for [N,F,H,W,C]
  bool has_labels = false, has_captions = false;
  std::vector<std::string> class_names;
  std::string labels_dtype;     // as stored, e.g. "int64", "uint8"
  int64_t chunk_rows = 0;       // images per HDF5 chunk (0: not chunked)
  std::string compression;      // e.g. "gzip", "none"
  bool images_in_memory = false;
  int64_t captions_per_image = 0;  // M: 0 without captions, 1 for [N]
  // Scene files.
  bool has_objects = false;
  int64_t max_objects = 0;                      // K
  std::vector<std::string> object_class_names;  // of objects/classes
  float small_below = 0, large_above = 0;       // size words' thresholds (objects attributes), 0 if absent
  bool has_swapped_captions = false;
  int64_t questions_per_image = 0;              // Q: 0 without questions
  std::vector<std::string> question_type_names;
};

// The ground truth of one image of a scene file: `count` objects, boxes (y_min, x_min, y_max,
// x_max) in pixels and classes; K - count padding rows follow in the file.
struct ObjectsView {
  int64_t count = 0;
  const float* boxes = nullptr;     // [K, 4]
  const int32_t* classes = nullptr; // [K]
};

// An opened, validated dataset file (read-only). Reads are thread-safe.
class Dataset {
 public:
  // Opens and checks `path`. Images up to `memory_limit_bytes` are read into memory once;
  // larger sets stay on disk and are read in chunk-aligned hyperslabs. Labels and captions are
  // always held in memory. Throws tessera::Error naming the file, the dataset and what was expected.
  // Clip files (images [N,F,H,W,C]) open only with `clips`: code written for single images sizes
  // its buffers by H*W*C, and must be refused a file whose samples are F times larger.
  static std::shared_ptr<Dataset> open(const std::string& path, int64_t memory_limit_bytes = 1LL << 30, bool clips = false);
  ~Dataset();
  Dataset(const Dataset&) = delete;
  Dataset& operator=(const Dataset&) = delete;

  const DatasetInfo& info() const { return info_; }
  int64_t size() const { return info_.size; }
  // Of one sample: a whole clip ([F,H,W,C]) in a clip file.
  int64_t image_bytes() const { return info_.frames * info_.height * info_.width * info_.channels; }

  // Copies images[indices[k]] to out + k * image_bytes(); out holds [n,H,W,C] u8 ([n,F,H,W,C]).
  void read_images(const std::vector<int64_t>& indices, uint8_t* out) const;
  // Images [start, start + count) into out.
  void read_range(int64_t start, int64_t count, uint8_t* out) const;

  int64_t label(int64_t i) const;        // Error if the file has no labels
  const std::vector<int64_t>& labels() const;  // Error if the file has no labels
  std::string caption(int64_t i) const;  // the first caption; Error if the file has no captions
  std::vector<std::string> captions(int64_t i) const;  // all M captions of image i
  std::string swapped_caption(int64_t i) const;  // Error if the file has none ("" for some images)
  ObjectsView objects(int64_t i) const;          // Error if the file has no objects, or holds clips
  ObjectsView objects(int64_t i, int64_t frame) const;  // frame 0..F-1 of sample i (any file)
  // Q questions, answers and type ids of image i; Error if the file has no questions.
  std::vector<std::string> questions(int64_t i) const;
  std::vector<std::string> answers(int64_t i) const;
  std::vector<int32_t> question_types(int64_t i) const;

 private:
  struct Impl;
  Dataset() = default;
  DatasetInfo info_;
  std::unique_ptr<Impl> impl_;
};

// Writes a dataset file in the schema above. Everything goes to a temporary file next to `path`
// that close() renames into place, so a failure (or a writer destroyed without close()) never
// damages an existing file at `path`.
class DatasetWriter {
 public:
  // class_names empty: no labels; otherwise every append gives labels in [0, class_names.size()).
  DatasetWriter(const std::string& path, int64_t height, int64_t width, int64_t channels,
                std::vector<std::string> class_names = {}, bool with_captions = false);
  ~DatasetWriter();  // without close(): removes the temporary file, leaves `path` untouched
  DatasetWriter(const DatasetWriter&) = delete;
  DatasetWriter& operator=(const DatasetWriter&) = delete;

  // images: [n,H,W,C] u8. labels: n values, required iff class_names was non-empty.
  // captions: n strings, required iff with_captions.
  void append(const uint8_t* images, int64_t n, const int64_t* labels = nullptr,
              const std::vector<std::string>* captions = nullptr);
  int64_t size() const { return size_; }
  // Names the command in the file's `written_by` attribute (h5::kWrittenBy), written at close().
  void set_written_by(std::string command) { written_by_ = std::move(command); }
  void close();

 private:
  struct Impl;
  std::string path_, temp_path_;
  int64_t height_, width_, channels_;
  std::vector<std::string> class_names_;
  bool with_captions_;
  int64_t size_ = 0;
  std::string written_by_;
  std::unique_ptr<Impl> impl_;
};

// The schema check behind `tessera data verify`: opens the file (which validates it) and also
// checks what open() does not need to read, returning one line per breach (empty: valid).
std::vector<std::string> verify_dataset(const std::string& path);

// Whether `s` is well-formed UTF-8 (what captions, questions and class names must be).
bool valid_utf8(const std::string& s);

}  // namespace tessera::data
