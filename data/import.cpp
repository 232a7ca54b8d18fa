#include "data/import.h"

#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include "autograd/error.h"
#include "data/dataset.h"
#include "data/hdf5_util.h"
#include "data/image_io.h"
#include "data/output_folder.h"

namespace tessera::data {

namespace fs = std::filesystem;

const std::vector<std::string>& fashion_mnist_class_names() {
  static const std::vector<std::string> names{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

// ---------------------------------------------------------------------------------------------
// idx files (LeCun's MNIST format): magic 0x0000 0x08 (u8) <rank>, then rank big-endian u32 dims.

namespace {

struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> values;
};

IdxArray read_idx(const std::string& path, int expected_rank) {
  if (!fs::exists(path)) fail("idx file '{}': no such file", path);
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files too
  if (!f) fail("idx file '{}': cannot open it", path);
  auto read = [&](void* buffer, size_t bytes) {
    size_t done = 0;
    while (done < bytes) {
      const unsigned piece = unsigned(std::min<size_t>(bytes - done, 1u << 30));
      const int got = gzread(f, static_cast<uint8_t*>(buffer) + done, piece);
      if (got <= 0) return false;
      done += size_t(got);
    }
    return true;
  };
  IdxArray a;
  uint8_t header[4];
  bool ok = read(header, 4);
  if (!ok || header[0] != 0 || header[1] != 0 || header[2] != 0x08 || header[3] != expected_rank) {
    gzclose(f);
    fail("idx file '{}': bad header, expected an unsigned-byte idx{} file (magic 00 00 08 {:02x})", path,
         expected_rank, expected_rank);
  }
  int64_t total = 1;
  for (int d = 0; d < expected_rank && ok; ++d) {
    uint8_t be[4];
    ok = read(be, 4);
    const int64_t dim = (int64_t(be[0]) << 24) | (int64_t(be[1]) << 16) | (int64_t(be[2]) << 8) | int64_t(be[3]);
    a.dims.push_back(dim);
    total = dim > 0 && total > (int64_t(1) << 40) / dim ? (int64_t(1) << 40) + 1 : total * dim;  // no overflow
  }
  if (ok && (total <= 0 || total > (int64_t(1) << 34))) {
    gzclose(f);
    fail("idx file '{}': implausible shape [{}] ({} values)", path, fmt::join(a.dims, ", "),
         total > (int64_t(1) << 40) ? std::string("over 2^40") : std::to_string(total));
  }
  // Read in pieces, growing with what the file really holds: a 40-byte header declaring 13 GB of
  // values is a truncated file, found after reading it, not an allocation of 13 GB.
  constexpr int64_t kPiece = int64_t(1) << 26;
  while (ok && int64_t(a.values.size()) < total) {
    const size_t at = a.values.size(), piece = size_t(std::min<int64_t>(kPiece, total - int64_t(at)));
    a.values.resize(at + piece);
    ok = read(a.values.data() + at, piece);
  }
  int errnum = 0;
  const char* zmessage = gzerror(f, &errnum);
  const std::string detail = errnum != Z_OK && errnum != Z_STREAM_END ? std::string(" (") + zmessage + ")" : "";
  gzclose(f);
  if (!ok) fail("idx file '{}': truncated or corrupt, expected {} values{}", path, total, detail);
  return a;
}

}  // namespace

int64_t import_idx(const std::string& images_path, const std::string& labels_path, const std::string& out_path,
                   const std::vector<std::string>& class_names) {
  const IdxArray images = read_idx(images_path, 3);
  const IdxArray labels = read_idx(labels_path, 1);
  const int64_t n = images.dims[0], h = images.dims[1], w = images.dims[2];
  if (labels.dims[0] != n)
    fail("idx files '{}' ({} images) and '{}' ({} labels) do not match", images_path, n, labels_path, labels.dims[0]);
  std::vector<int64_t> label_values(labels.values.begin(), labels.values.end());
  for (int64_t i = 0; i < n; ++i)
    if (label_values[size_t(i)] >= int64_t(class_names.size()))
      fail("idx file '{}': label {} at index {} is outside the {} class names", labels_path, label_values[size_t(i)], i,
           class_names.size());
  DatasetWriter writer(out_path, h, w, 1, class_names);
  writer.set_written_by(kImportCommand);
  writer.append(images.values.data(), n, label_values.data());
  writer.close();
  return n;
}

FashionMnistSummary import_fashion_mnist(const std::string& out_dir, const std::string& source_dir, bool overwrite) {
  const std::string train = (fs::path(out_dir) / "train.h5").string(), test = (fs::path(out_dir) / "test.h5").string();
  h5::refuse_to_replace(train, kImportCommand, overwrite);
  h5::refuse_to_replace(test, kImportCommand, overwrite);
  std::vector<std::string> sources;  // all four found before anything is made
  for (const char* name : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                           "t10k-labels-idx1-ubyte.gz"}) {
    const fs::path p = fs::path(source_dir) / name;
    if (!fs::exists(p))
      fail("fashion-mnist import: '{}' not found (install Debian's dataset-fashion-mnist, or pass --source)", p.string());
    sources.push_back(p.string());
  }
  OutputFolder folder(out_dir, "fashion-mnist import");
  FashionMnistSummary s;
  s.train = import_idx(sources[0], sources[1], train, fashion_mnist_class_names());
  s.test = import_idx(sources[2], sources[3], test, fashion_mnist_class_names());
  folder.keep();
  return s;
}

// ---------------------------------------------------------------------------------------------
// Image folders

namespace {

bool is_image_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

// Image files under `dir` (recursively, or only directly in it), sorted by path.
std::vector<fs::path> images_in(const fs::path& dir, bool recursive) {
  std::vector<fs::path> files;
  if (recursive) {
    for (const auto& e : fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink))
      if (e.is_regular_file() && is_image_name(e.path())) files.push_back(e.path());
  } else {
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file() && is_image_name(e.path())) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ')) s.pop_back();
  size_t start = 0;
  while (start < s.size() && s[start] == ' ') ++start;
  return s.substr(start);
}

// path (relative to source, '/'-separated) -> caption.
std::map<std::string, std::string> read_captions(const std::string& path, const fs::path& source) {
  std::ifstream in(path);
  if (!in) fail("captions file '{}': cannot open it", path);
  std::map<std::string, std::string> captions;
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (trim(line).empty()) continue;
    size_t sep = line.find('\t');
    if (sep == std::string::npos) sep = line.find(',');
    if (sep == std::string::npos)
      fail("captions file '{}' line {}: expected 'path<TAB>caption', got '{}'", path, number, line);
    std::string key = trim(line.substr(0, sep)), caption = trim(line.substr(sep + 1));
    if (caption.size() >= 2 && caption.front() == '"' && caption.back() == '"') caption = caption.substr(1, caption.size() - 2);
    if (number == 1 && (key == "path" || key == "file" || key == "filename" || key == "image")) continue;  // header
    fs::path p(key);
    if (p.is_absolute()) p = p.lexically_relative(source);
    key = p.lexically_normal().generic_string();
    if (captions.count(key)) fail("captions file '{}' line {}: a second caption for '{}'", path, number, key);
    if (!valid_utf8(caption))
      fail("captions file '{}' line {}: the caption is not valid UTF-8 (save the file as UTF-8)", path, number);
    captions[key] = caption;
  }
  return captions;
}

}  // namespace

FolderImportSummary import_folder(const std::string& source, const std::string& out_path,
                                  const FolderImportOptions& options) {
  const fs::path root(source);
  if (!fs::is_directory(root)) fail("folder import: '{}' is not a folder", source);
  h5::refuse_to_replace(out_path, kImportCommand, options.overwrite);
  if (options.size < 1 || options.size > 4096) fail("folder import: --size {} is out of range [1, 4096]", options.size);
  if (options.channels != 1 && options.channels != 3) fail("folder import: channels must be 1 or 3, got {}", options.channels);

  // Classes: the sub-folders that hold images, sorted.
  FolderImportSummary summary;
  std::vector<std::pair<fs::path, int64_t>> files;  // (path, label or -1)
  std::vector<fs::path> class_dirs;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory()) class_dirs.push_back(e.path());
  std::sort(class_dirs.begin(), class_dirs.end());
  for (const fs::path& dir : class_dirs) {
    const std::vector<fs::path> found = images_in(dir, true);
    if (found.empty()) continue;
    const int64_t label = int64_t(summary.class_names.size());
    summary.class_names.push_back(dir.filename().string());
    for (const fs::path& p : found) files.emplace_back(p, label);
  }
  const std::vector<fs::path> loose = images_in(root, false);
  if (!summary.class_names.empty() && !loose.empty())
    fail("folder import: '{}' has class sub-folders but also the image '{}' outside them; move it into a class folder",
         source, loose.front().string());
  for (const fs::path& p : loose) files.emplace_back(p, -1);
  if (files.empty()) fail("folder import: no PNG or JPEG images under '{}'", source);

  std::map<std::string, std::string> captions;
  const bool with_captions = !options.captions_path.empty();
  if (with_captions) captions = read_captions(options.captions_path, root);

  DatasetWriter writer(out_path, options.size, options.size, options.channels, summary.class_names, with_captions);
  writer.set_written_by(kImportCommand);
  const int64_t block = 256;  // images decoded per append: bounded memory for any folder size
  std::vector<uint8_t> images;
  std::vector<int64_t> labels;
  std::vector<std::string> texts;
  int64_t used_captions = 0;
  auto flush = [&] {
    const int64_t n = int64_t(labels.size());
    writer.append(images.data(), n, summary.class_names.empty() ? nullptr : labels.data(), with_captions ? &texts : nullptr);
    images.clear(), labels.clear(), texts.clear();
  };
  for (const auto& [path, label] : files) {
    const Image image = resize_center_crop(read_image(path.string(), options.channels), options.size);
    images.insert(images.end(), image.pixels.begin(), image.pixels.end());
    labels.push_back(label);
    if (with_captions) {
      const std::string key = path.lexically_relative(root).lexically_normal().generic_string();
      const auto it = captions.find(key);
      if (it == captions.end())
        fail("folder import: image '{}' has no caption in '{}' (expected a line '{}<TAB>caption')", path.string(),
             options.captions_path, key);
      texts.push_back(it->second);
      ++used_captions;
    }
    if (int64_t(labels.size()) == block) flush();
  }
  if (!labels.empty()) flush();
  writer.close();
  summary.images = int64_t(files.size());
  summary.unused_captions = int64_t(captions.size()) - used_captions;
  return summary;
}

}  // namespace tessera::data
