// Dataset files: the writer/reader round trip, in-memory and out-of-core reads, the atomic
// writer, and a refusal with a precise message for every way a file can break the schema.
#include <hdf5.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "autograd/error.h"
#include "data/dataset.h"
#include "data_test_util.h"

using namespace tessera;
using namespace tessera::data;
using namespace tessera::data::testing;

namespace {

// Writes arbitrary (possibly schema-breaking) files with the raw HDF5 API.
class RawFile {
 public:
  explicit RawFile(const std::string& path) : file_(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)) {}
  ~RawFile() {
    close_datasets();
    H5Fclose(file_);
  }
  // A dataset of `type` and `dims`, filled from `data` (memory type `mem_type`), or zeros.
  hid_t add(const char* name, hid_t type, const std::vector<hsize_t>& dims, hid_t mem_type = -1, const void* data = nullptr) {
    hid_t space = H5Screate_simple(int(dims.size()), dims.data(), nullptr);
    hid_t d = H5Dcreate2(file_, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t n = 1;
    for (hsize_t x : dims) n *= x;
    std::vector<uint8_t> zeros(n * H5Tget_size(type) + 1, 0);
    H5Dwrite(d, data ? mem_type : type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data ? data : zeros.data());
    H5Sclose(space);
    datasets_.push_back(d);
    return d;
  }
  void images(const std::vector<hsize_t>& dims) { add("images", H5T_STD_U8LE, dims); }
  void group(const char* name) { H5Gclose(H5Gcreate2(file_, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)); }
  void labels(const std::vector<int64_t>& values, const std::vector<std::string>* names) {
    const hid_t d = add("labels", H5T_STD_I64LE, {values.size()}, H5T_NATIVE_INT64, values.data());
    if (names) string_attribute(d, "class_names", *names);
  }
  static void string_attribute(hid_t object, const char* name, const std::vector<std::string>& values) {
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    const hsize_t n = values.size();
    hid_t space = H5Screate_simple(1, &n, nullptr);
    hid_t a = H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    std::vector<const char*> p;
    for (const auto& s : values) p.push_back(s.c_str());
    H5Awrite(a, type, p.data());
    H5Aclose(a), H5Sclose(space), H5Tclose(type);
  }
  RawFile(const RawFile&) = delete;
  RawFile& operator=(const RawFile&) = delete;

 private:
  hid_t file_;
  std::vector<hid_t> datasets_;

 public:
  void close_datasets() {
    for (hid_t d : datasets_) H5Dclose(d);
    datasets_.clear();
  }
};

// Opening `path` (a clip file too, with `clips`) must fail with a message that contains every one of `parts`.
void expect_refused(const std::string& path, const std::vector<std::string>& parts, bool clips = false) {
  try {
    Dataset::open(path, 1LL << 30, clips);
    BOOST_ERROR("opening " << path << " should have failed");
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const std::string& part : parts)
      BOOST_TEST(message.find(part) != std::string::npos, "message '" << message << "' lacks '" << part << "'");
  }
  BOOST_TEST(!verify_dataset(path).empty());
}

const std::vector<std::string> three_names{"a", "b", "c"};

}  // namespace

BOOST_AUTO_TEST_SUITE(dataset)

BOOST_AUTO_TEST_CASE(writer_reader_round_trip) {
  TempDir dir;
  const std::string path = dir.file("set.h5");
  const int64_t n = 37, h = 5, w = 4, c = 3;
  write_pattern_dataset(path, n, h, w, c, 3, true);
  const auto ds = Dataset::open(path);
  const DatasetInfo& info = ds->info();
  BOOST_TEST(info.path == path);
  BOOST_TEST(info.size == n);
  BOOST_TEST(info.height == h);
  BOOST_TEST(info.width == w);
  BOOST_TEST(info.channels == c);
  BOOST_TEST(info.has_labels);
  BOOST_TEST(info.has_captions);
  BOOST_TEST(info.class_names == (std::vector<std::string>{"class0", "class1", "class2"}), boost::test_tools::per_element());
  BOOST_TEST(info.images_in_memory);
  BOOST_TEST(info.chunk_rows > 0);
  BOOST_TEST(info.compression.find("gzip") != std::string::npos);

  std::vector<int64_t> indices{36, 0, 17, 17, 5};
  std::vector<uint8_t> out(indices.size() * size_t(ds->image_bytes()));
  ds->read_images(indices, out.data());
  const std::vector<uint8_t> all = pattern_images(n, h, w, c);
  for (size_t k = 0; k < indices.size(); ++k)
    BOOST_TEST(std::equal(out.begin() + k * h * w * c, out.begin() + (k + 1) * h * w * c, all.begin() + indices[k] * h * w * c));
  for (int64_t i = 0; i < n; ++i) {
    BOOST_TEST(ds->label(i) == i % 3);
    BOOST_TEST(ds->caption(i) == "caption " + std::to_string(i));
  }
  BOOST_CHECK_THROW(ds->label(n), Error);
  BOOST_CHECK_THROW(ds->read_images({-1}, out.data()), Error);
  BOOST_TEST(verify_dataset(path).empty());
}

BOOST_AUTO_TEST_CASE(unlabelled_and_utf8_captions) {
  TempDir dir;
  const std::string path = dir.file("pairs.h5");
  DatasetWriter writer(path, 2, 2, 1, {}, true);
  const std::vector<uint8_t> images{1, 2, 3, 4, 5, 6, 7, 8};
  const std::vector<std::string> captions{"un café ☕", ""};
  writer.append(images.data(), 2, nullptr, &captions);
  writer.close();
  const auto ds = Dataset::open(path);
  BOOST_TEST(!ds->info().has_labels);
  BOOST_TEST(ds->caption(0) == "un café ☕");
  BOOST_TEST(ds->caption(1) == "");
  BOOST_CHECK_THROW(ds->label(0), Error);
}

BOOST_AUTO_TEST_CASE(out_of_core_reads_match_in_memory) {
  TempDir dir;
  const std::string path = dir.file("big.h5");
  const int64_t n = 2000, h = 16, w = 16, c = 3;  // 768-byte images: 24 chunks of 85
  write_pattern_dataset(path, n, h, w, c);
  const auto in_memory = Dataset::open(path);
  const auto on_disk = Dataset::open(path, 1000);  // far below 2000 * 768 bytes
  BOOST_TEST(in_memory->info().images_in_memory);
  BOOST_TEST(!on_disk->info().images_in_memory);
  BOOST_TEST(on_disk->info().chunk_rows < n);
  std::vector<int64_t> indices;
  for (int64_t i = 0; i < n; ++i) indices.push_back((i * 97 + 13) % n);  // every index, scattered
  indices.push_back(n - 1);
  indices.push_back(0);
  std::vector<uint8_t> a(indices.size() * h * w * c), b(a.size());
  in_memory->read_images(indices, a.data());
  on_disk->read_images(indices, b.data());
  BOOST_TEST(a == b);
  // A cache of 16 of the 24 chunks (the least it keeps): hits, misses and evictions in LRU order.
  const auto few_chunks = Dataset::open(path, 3 * on_disk->info().chunk_rows * h * w * c);
  BOOST_TEST(!few_chunks->info().images_in_memory);
  for (int pass = 0; pass < 3; ++pass) {
    std::fill(b.begin(), b.end(), 0);
    few_chunks->read_images(indices, b.data());
    BOOST_TEST(a == b);
  }
  const std::vector<uint8_t> all_images = pattern_images(n, h, w, c);
  std::vector<uint8_t> one(size_t(h * w * c));
  for (int64_t k = 0; k < 300; ++k) {
    const int64_t i = (k * 7919) % n;  // wanders over all chunks, revisiting some
    few_chunks->read_images({i}, one.data());
    BOOST_TEST(std::equal(one.begin(), one.end(), all_images.begin() + i * h * w * c));
  }
  std::vector<uint8_t> range(10 * h * w * c);
  on_disk->read_range(n - 10, 10, range.data());
  const std::vector<uint8_t> all = pattern_images(n, h, w, c);
  BOOST_TEST(std::equal(range.begin(), range.end(), all.end() - range.size()));
}

BOOST_AUTO_TEST_CASE(writer_never_damages_an_existing_file) {
  TempDir dir;
  const std::string path = dir.file("keep.h5");
  write_pattern_dataset(path, 10, 3, 3, 1);
  const auto before = std::filesystem::file_size(path);
  {
    // Abandoned without close().
    DatasetWriter writer(path, 2, 2, 1, three_names);
    const std::vector<uint8_t> img(4, 9);
    const int64_t label = 1;
    writer.append(img.data(), 1, &label);
  }
  {
    // A bad label fails the append; the writer is then dropped.
    DatasetWriter writer(path, 2, 2, 1, three_names);
    const std::vector<uint8_t> img(4, 9);
    const int64_t label = 3;
    BOOST_CHECK_THROW(writer.append(img.data(), 1, &label), Error);
    const std::vector<std::string>* no_captions = nullptr;
    BOOST_CHECK_THROW(writer.append(img.data(), 1, nullptr, no_captions), Error);  // labels required
  }
  BOOST_TEST(std::filesystem::file_size(path) == before);
  BOOST_TEST(Dataset::open(path)->size() == 10);
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++files;
  BOOST_TEST(files == 1);  // no temporary left behind
  BOOST_CHECK_THROW(DatasetWriter(dir.file("no/such/folder/x.h5"), 2, 2, 1), Error);
}

BOOST_AUTO_TEST_CASE(missing_file) { expect_refused("/nonexistent/tessera/none.h5", {"/nonexistent/tessera/none.h5", "no such file"}); }

BOOST_AUTO_TEST_CASE(not_hdf5) {
  TempDir dir;
  const std::string path = dir.file("text.h5");
  std::ofstream(path) << "this is not an HDF5 file\n";
  expect_refused(path, {path, "not an HDF5 file"});
}

BOOST_AUTO_TEST_CASE(truncated_file) {
  TempDir dir;
  const std::string path = dir.file("cut.h5");
  write_pattern_dataset(path, 200, 8, 8, 3);
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  expect_refused(path, {path, "truncated or corrupt"});
}

BOOST_AUTO_TEST_CASE(corrupt_file) {
  TempDir dir;
  const std::string path = dir.file("bad.h5");
  write_pattern_dataset(path, 400, 8, 8, 3);
  // Scribble over the second half (the compressed chunks live there, the metadata near the start).
  const auto size = std::filesystem::file_size(path);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(std::streamoff(size / 2));
    for (auto i = size / 2; i < size - 4096; i += 97) f.seekp(std::streamoff(i)), f.put(char(0x5A ^ (i & 0xFF)));
  }
  try {
    Dataset::open(path);
    BOOST_ERROR("opening a corrupt file should fail");
  } catch (const Error& e) {
    const std::string m = e.what();
    BOOST_TEST(m.find(path) != std::string::npos);
    BOOST_TEST(m.find("corrupt") != std::string::npos, m);
  }
  BOOST_TEST(!verify_dataset(path).empty());
}

BOOST_AUTO_TEST_CASE(no_images) {
  TempDir dir;
  const std::string path = dir.file("x.h5");
  { RawFile f(path); f.labels({0}, &three_names); f.close_datasets(); }
  expect_refused(path, {path, "'images'", "uint8 [N,H,W,C]"});
}

BOOST_AUTO_TEST_CASE(images_wrong_dtype) {
  TempDir dir;
  const std::string path = dir.file("x.h5");
  { RawFile f(path); f.add("images", H5T_IEEE_F32LE, {2, 4, 4, 1}); f.close_datasets(); }
  expect_refused(path, {path, "'images'", "float32", "expected uint8"});
  { RawFile f(path); f.add("images", H5T_STD_I8LE, {2, 4, 4, 1}); f.close_datasets(); }
  expect_refused(path, {path, "'images'", "int8", "expected uint8"});
}

BOOST_AUTO_TEST_CASE(images_wrong_rank) {
  TempDir dir;
  const std::string path = dir.file("x.h5");
  { RawFile f(path); f.images({2, 28, 28}); f.close_datasets(); }
  expect_refused(path, {path, "'images'", "rank 3", "[2,28,28]", "expected 4"});
}

BOOST_AUTO_TEST_CASE(images_empty) {
  TempDir dir;
  const std::string path = dir.file("x.h5");
  { RawFile f(path); f.images({0, 2, 2, 1}); f.close_datasets(); }
  expect_refused(path, {path, "'images'", "at least one image"});
}

// A small file that declares more than it holds is refused at once, before anything is sized by
// it: 10^9 images in a contiguous dataset never written, the same gzip-compressed, and a shape
// whose byte count overflows 64 bits.
BOOST_AUTO_TEST_CASE(declared_sizes_are_checked_against_the_file) {
  TempDir dir;
  const auto declare = [](const std::string& path, const std::vector<hsize_t>& dims, bool gzip) {
    const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const hid_t space = H5Screate_simple(4, dims.data(), nullptr);
    const hid_t plist = H5Pcreate(H5P_DATASET_CREATE);
    if (gzip) {
      const hsize_t chunk[4] = {1, dims[1], dims[2], dims[3]};
      H5Pset_chunk(plist, 4, chunk);
      H5Pset_deflate(plist, 4);
    } else {
      H5Pset_alloc_time(plist, H5D_ALLOC_TIME_LATE);
    }
    H5Dclose(H5Dcreate2(file, "images", H5T_STD_U8LE, space, H5P_DEFAULT, plist, H5P_DEFAULT));
    H5Pclose(plist), H5Sclose(space), H5Fclose(file);
  };
  const std::string contiguous = dir.file("contiguous.h5"), gzip = dir.file("gzip.h5"), overflow = dir.file("overflow.h5");
  declare(contiguous, {1000000000, 28, 28, 1}, false);
  declare(gzip, {1000000000, 28, 28, 1}, true);
  declare(overflow, {hsize_t(1) << 40, 4096, 4096, 1}, false);
  BOOST_TEST(std::filesystem::file_size(contiguous) < 10000u);
  expect_refused(contiguous, {contiguous, "declares shape [1000000000,28,28,1] (784000000000 bytes)", "holds 0 bytes of image data"});
  expect_refused(gzip, {gzip, "declares shape [1000000000,28,28,1]", "truncated or damaged"});
  expect_refused(overflow, {overflow, "declares shape [1099511627776,4096,4096,1] (over 2^62 bytes)"});
}

// Images [N,F,H,W,C] are clips: a sample is a whole clip, and the objects beside them must be per
// frame ([N,F,K,...] with the images' N and F), or the file is refused naming the dataset.
BOOST_AUTO_TEST_CASE(clip_files_are_read_whole_and_inconsistent_objects_refused) {
  TempDir dir;
  const std::string path = dir.file("clips.h5");
  const hsize_t n = 2, frames = 3, h = 4, w = 5, k = 2;
  std::vector<uint8_t> pixels(n * frames * h * w);
  std::iota(pixels.begin(), pixels.end(), uint8_t(0));
  const std::vector<int32_t> no_objects(n * frames * k, -1);
  auto write = [&](const std::vector<hsize_t>& classes, const std::vector<hsize_t>& boxes, const std::vector<hsize_t>& count) {
    RawFile f(path);
    f.add("images", H5T_STD_U8LE, {n, frames, h, w, 1}, H5T_NATIVE_UINT8, pixels.data());
    f.group("objects");
    const bool padded = classes == std::vector<hsize_t>{n, frames, k};
    RawFile::string_attribute(f.add("objects/classes", H5T_STD_I32LE, classes, H5T_NATIVE_INT32, padded ? no_objects.data() : nullptr),
                              "class_names", three_names);
    f.add("objects/boxes", H5T_IEEE_F32LE, boxes);
    f.add("objects/count", H5T_STD_I32LE, count);
    f.close_datasets();
  };
  write({n, frames, k}, {n, frames, k, 4}, {n, frames});
  try {  // unless clips are asked for
    Dataset::open(path);
    BOOST_ERROR("a clip file opened as single images");
  } catch (const Error& e) {
    for (const std::string& part : {path, std::string("'images'"), std::string("[2,3,4,5,1]"), std::string("clips of 3 frames")})
      BOOST_TEST(std::string(e.what()).find(part) != std::string::npos, e.what());
  }
  for (const int64_t memory : {int64_t(1) << 30, int64_t(0)}) {  // in memory and out of core
    const auto ds = Dataset::open(path, memory, true);
    BOOST_TEST(ds->info().frames == 3);
    BOOST_TEST((ds->info().size == 2 && ds->info().height == 4 && ds->info().width == 5 && ds->info().channels == 1));
    BOOST_TEST(ds->image_bytes() == 60);
    std::vector<uint8_t> out(2 * 60);
    ds->read_images({1, 0}, out.data());
    BOOST_TEST(std::equal(out.begin(), out.begin() + 60, pixels.begin() + 60));
    BOOST_TEST(std::equal(out.begin() + 60, out.end(), pixels.begin()));
    ds->read_range(0, 2, out.data());
    BOOST_TEST((out == pixels));
    BOOST_TEST(ds->objects(1, 2).count == 0);
    BOOST_TEST(ds->info().max_objects == 2);
    try {
      ds->objects(1);
      BOOST_ERROR("objects(i) of a clip file should fail");
    } catch (const Error& e) {
      BOOST_TEST(std::string(e.what()).find("use objects(i, frame)") != std::string::npos, e.what());
    }
  }
  BOOST_TEST(verify_dataset(path).empty());

  write({n, 2, k}, {n, 2, k, 4}, {n, 2});
  expect_refused(path, {path, "'objects/classes'", "[2,2,2]", "expected [N, F, K]", "F = 3"}, true);
  write({n, k}, {n, k, 4}, {n});
  expect_refused(path, {path, "'objects/classes'", "[2,2]", "expected [N, F, K]"}, true);
  write({n, frames, k}, {n, frames, 4}, {n, frames});
  expect_refused(path, {path, "'objects/boxes'", "[2,3,4]", "float32 [N, F, K, 4] = [2,3,2,4]"}, true);
  write({n, frames, k}, {n, frames, k, 4}, {n});
  expect_refused(path, {path, "'objects/count'", "[2]", "int32 [N, F] = [2,3]"}, true);
  { RawFile f(path); f.images({2, 3, 4, 4, 1, 1}); f.close_datasets(); }
  expect_refused(path, {path, "'images'", "rank 6", "expected 4", "5: [N,F,H,W,C]"}, true);
  { RawFile f(path); f.images({2, 3, 0, 4, 1}); f.close_datasets(); }
  expect_refused(path, {path, "'images'", "F, H, W and C of at least 1"}, true);

  // A clip file declaring more than it holds is refused before anything is sized by it.
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  const hsize_t dims[5] = {1000000000, 8, 28, 28, 1};
  const hid_t space = H5Screate_simple(5, dims, nullptr), plist = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_alloc_time(plist, H5D_ALLOC_TIME_LATE);
  H5Dclose(H5Dcreate2(file, "images", H5T_STD_U8LE, space, H5P_DEFAULT, plist, H5P_DEFAULT));
  H5Pclose(plist), H5Sclose(space), H5Fclose(file);
  expect_refused(path, {path, "declares shape [1000000000,8,28,28,1] (6272000000000 bytes)", "holds 0 bytes of image data"}, true);
}

BOOST_AUTO_TEST_CASE(labels_length_mismatch) {
  TempDir dir;
  const std::string path = dir.file("x.h5");
  { RawFile f(path); f.images({3, 2, 2, 1}); f.labels({0, 1}, &three_names); f.close_datasets(); }
  expect_refused(path, {path, "'labels'", "2 entries", "'images' has 3", "one label per image"});
}

BOOST_AUTO_TEST_CASE(label_outside_class_names) {
  TempDir dir;
  const std::string path = dir.file("x.h5");
  { RawFile f(path); f.images({3, 2, 2, 1}); f.labels({0, 3, 1}, &three_names); f.close_datasets(); }
  expect_refused(path, {path, "'labels'", "holds 3 at index 1", "[0, 3)"});
  { RawFile f(path); f.images({3, 2, 2, 1}); f.labels({0, -1, 1}, &three_names); f.close_datasets(); }
  expect_refused(path, {path, "'labels'", "holds -1 at index 1"});
}

BOOST_AUTO_TEST_CASE(labels_without_class_names) {
  TempDir dir;
  const std::string path = dir.file("x.h5");
  { RawFile f(path); f.images({2, 2, 2, 1}); f.labels({0, 1}, nullptr); f.close_datasets(); }
  expect_refused(path, {path, "'labels'", "'class_names'"});
}

BOOST_AUTO_TEST_CASE(labels_wrong_dtype_and_rank) {
  TempDir dir;
  const std::string path = dir.file("x.h5");
  { RawFile f(path); f.images({2, 2, 2, 1}); f.add("labels", H5T_IEEE_F64LE, {2}); f.close_datasets(); }
  expect_refused(path, {path, "'labels'", "float64", "integer"});
  { RawFile f(path); f.images({2, 2, 2, 1}); f.add("labels", H5T_STD_I32LE, {2, 1}); f.close_datasets(); }
  expect_refused(path, {path, "'labels'", "[2,1]", "rank 1"});
}

BOOST_AUTO_TEST_CASE(captions_wrong_type_and_length) {
  TempDir dir;
  const std::string path = dir.file("x.h5");
  { RawFile f(path); f.images({2, 2, 2, 1}); f.add("captions", H5T_STD_I32LE, {2}); f.close_datasets(); }
  expect_refused(path, {path, "'captions'", "int32", "strings"});
  {
    RawFile f(path);
    f.images({2, 2, 2, 1});
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 8);
    f.add("captions", t, {3});
    H5Tclose(t);
    f.close_datasets();
  }
  expect_refused(path, {path, "'captions'", "3 entries", "one caption per image"});
}

BOOST_AUTO_TEST_CASE(verify_flags_captions_that_are_not_utf8) {
  TempDir dir;
  const std::string path = dir.file("latin1.h5");
  {
    DatasetWriter writer(path, 1, 1, 1, {}, true);
    const std::vector<uint8_t> images{1, 2, 3};
    const std::vector<std::string> captions{"fine ✓", "caf\xe9", "\xc3"};  // Latin-1 é; a cut 2-byte sequence
    writer.append(images.data(), 3, nullptr, &captions);
    writer.close();
  }
  BOOST_TEST(Dataset::open(path)->caption(1) == "caf\xe9");  // readable, but not schema-clean
  const std::vector<std::string> breaches = verify_dataset(path);
  BOOST_TEST_REQUIRE(breaches.size() == 1u);
  BOOST_TEST(breaches[0].find("caption 1") != std::string::npos, breaches[0]);
  BOOST_TEST(breaches[0].find("UTF-8") != std::string::npos, breaches[0]);
}

BOOST_AUTO_TEST_SUITE_END()
