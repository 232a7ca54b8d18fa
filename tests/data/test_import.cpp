// Importers and image I/O: idx round trip (synthetic, and Debian's Fashion-MNIST when installed),
// image folders with PNG and JPEG and captions, resizing, the PNG writer, and h5py-written files.
#include <zlib.h>

#include <array>
#include <boost/test/unit_test.hpp>
#include <fstream>

#include "autograd/error.h"
#include "data/dataset.h"
#include "data/image_io.h"
#include "data/import.h"
#include "data/png.h"
#include "data_test_util.h"
#include "tests/support/image_files.h"

using namespace tessera;
using namespace tessera::data;
using namespace tessera::data::testing;
using tessera::testing::write_idx;
using tessera::testing::write_jpeg;
namespace fs = std::filesystem;

namespace {

Image solid(int64_t h, int64_t w, uint8_t r, uint8_t g, uint8_t b) {
  Image im{h, w, 3, {}};
  for (int64_t i = 0; i < h * w; ++i) im.pixels.insert(im.pixels.end(), {r, g, b});
  return im;
}

std::string python_with_h5py() {
  for (const char* p : {"/usr/bin/python3", "python3"})
    if (std::system((std::string(p) + " -c 'import h5py, numpy' >/dev/null 2>&1").c_str()) == 0) return p;
  return "";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(import)

BOOST_AUTO_TEST_CASE(idx_round_trip_plain_and_gzip) {
  TempDir dir;
  const int n = 5, h = 4, w = 3;
  std::vector<uint8_t> pixels, labels;
  for (int i = 0; i < n * h * w; ++i) pixels.push_back(uint8_t(i * 7));
  for (int i = 0; i < n; ++i) labels.push_back(uint8_t((i * 3) % 4));
  const std::vector<std::string> names{"zero", "one", "two", "three"};
  for (bool gz : {false, true}) {
    write_idx(dir.file("img"), {n, h, w}, pixels, gz);
    write_idx(dir.file("lab"), {n}, labels, gz);
    BOOST_TEST(import_idx(dir.file("img"), dir.file("lab"), dir.file("out.h5"), names) == n);
    const auto ds = Dataset::open(dir.file("out.h5"));
    BOOST_TEST(ds->info().height == h);
    BOOST_TEST(ds->info().width == w);
    BOOST_TEST(ds->info().channels == 1);
    BOOST_TEST(ds->info().class_names == names, boost::test_tools::per_element());
    std::vector<uint8_t> back(pixels.size());
    ds->read_range(0, n, back.data());
    BOOST_TEST(back == pixels, boost::test_tools::per_element());
    for (int i = 0; i < n; ++i) BOOST_TEST(ds->label(i) == labels[size_t(i)]);
  }
  // Bad inputs name the file.
  write_idx(dir.file("short"), {n}, {0, 1}, true);  // says 5, holds 2
  try {
    import_idx(dir.file("img"), dir.file("short"), dir.file("x.h5"), names);
    BOOST_ERROR("truncated idx accepted");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find(dir.file("short")) != std::string::npos, e.what());
    BOOST_TEST(std::string(e.what()).find("truncated") != std::string::npos, e.what());
  }
  write_idx(dir.file("lab3"), {3}, {0, 1, 2}, true);
  BOOST_CHECK_THROW(import_idx(dir.file("img"), dir.file("lab3"), dir.file("x.h5"), names), Error);  // 5 vs 3
  write_idx(dir.file("lab9"), {n}, {0, 1, 9, 0, 0}, true);
  BOOST_CHECK_THROW(import_idx(dir.file("img"), dir.file("lab9"), dir.file("x.h5"), names), Error);  // 9 >= 4 classes
  BOOST_CHECK_THROW(import_idx(dir.file("lab"), dir.file("lab"), dir.file("x.h5"), names), Error);   // rank 1 as images
  BOOST_TEST(!fs::exists(dir.file("x.h5")));
}

BOOST_AUTO_TEST_CASE(debian_fashion_mnist) {
  const std::string src = kFashionMnistDir;
  if (!fs::exists(src + "/t10k-images-idx3-ubyte.gz")) {
    BOOST_TEST_MESSAGE("SKIPPED: Debian's dataset-fashion-mnist is not installed");
    return;
  }
  TempDir dir;
  const FashionMnistSummary s = import_fashion_mnist(dir.file("fm"), src);
  BOOST_TEST(s.train == 60000);
  BOOST_TEST(s.test == 10000);
  const auto test = Dataset::open(dir.file("fm/test.h5"));
  BOOST_TEST(test->info().class_names == fashion_mnist_class_names(), boost::test_tools::per_element());
  BOOST_TEST(test->info().class_names[0] == "T-shirt/top");
  BOOST_TEST(test->info().height == 28);
  // Compare a few images and labels with the raw bytes, read independently of the importer.
  gzFile f = gzopen((src + "/t10k-images-idx3-ubyte.gz").c_str(), "rb");
  std::vector<uint8_t> raw(16 + 10000 * 784);
  BOOST_TEST(gzread(f, raw.data(), unsigned(raw.size())) == int(raw.size()));
  gzclose(f);
  std::vector<uint8_t> mine(784);
  for (int64_t i : {0, 1, 4999, 9999}) {
    test->read_images({i}, mine.data());
    BOOST_TEST(std::equal(mine.begin(), mine.end(), raw.begin() + 16 + i * 784));
  }
  f = gzopen((src + "/t10k-labels-idx1-ubyte.gz").c_str(), "rb");
  std::vector<uint8_t> raw_labels(8 + 10000);
  gzread(f, raw_labels.data(), unsigned(raw_labels.size()));
  gzclose(f);
  for (int64_t i = 0; i < 10000; i += 997) BOOST_TEST(test->label(i) == raw_labels[size_t(8 + i)]);
  BOOST_TEST(verify_dataset(dir.file("fm/train.h5")).empty());
}

BOOST_AUTO_TEST_CASE(resize_and_centre_crop) {
  // Shrinking 8x6 -> 3x2 (factors 8/3 and 3): each output is the triangle-weighted mean of the
  // source pixels within one scale factor of its centre, computed here directly in 2-D.
  Image src{8, 6, 1, {}};
  for (int i = 0; i < 48; ++i) src.pixels.push_back(uint8_t((i * 53) % 256));
  const Image small = resize(src, 3, 2);
  for (int oy = 0; oy < 3; ++oy)
    for (int ox = 0; ox < 2; ++ox) {
      double acc = 0, total = 0;
      for (int y = 0; y < 8; ++y)
        for (int x = 0; x < 6; ++x) {
          const double sy = 8.0 / 3, sx = 3.0;
          const double wy = std::max(0.0, 1 - std::abs(y + 0.5 - (oy + 0.5) * sy) / sy);
          const double wx = std::max(0.0, 1 - std::abs(x + 0.5 - (ox + 0.5) * sx) / sx);
          acc += wy * wx * src.pixels[size_t(y * 6 + x)], total += wy * wx;
        }
      BOOST_TEST(std::abs(int(small.pixels[size_t(oy * 2 + ox)]) - int(std::lround(acc / total))) <= 1);
    }
  // Growing by 2 interpolates linearly between pixel centres.
  const Image big = resize(Image{1, 2, 1, {0, 200}}, 1, 4);
  BOOST_TEST(big.pixels == (std::vector<uint8_t>{0, 50, 150, 200}), boost::test_tools::per_element());
  // A solid colour stays solid at any size.
  const Image red = resize(solid(7, 13, 250, 3, 90), 5, 31);
  for (int64_t i = 0; i < 5 * 31; ++i) {
    BOOST_TEST(red.pixels[size_t(3 * i)] == 250);
    BOOST_TEST(red.pixels[size_t(3 * i + 2)] == 90);
  }
  // Tall 6x3, size 3: no scaling, the middle three rows.
  Image tall{6, 3, 1, {}};
  for (int i = 0; i < 18; ++i) tall.pixels.push_back(uint8_t(i));
  const Image crop = resize_center_crop(tall, 3);
  BOOST_TEST(crop.pixels == (std::vector<uint8_t>{3, 4, 5, 6, 7, 8, 9, 10, 11}), boost::test_tools::per_element());
  const Image square = resize_center_crop(solid(30, 50, 1, 2, 3), 8);
  BOOST_TEST(square.height == 8);
  BOOST_TEST(square.width == 8);
}

BOOST_AUTO_TEST_CASE(png_writer_and_grid_read_back) {
  TempDir dir;
  const std::vector<uint8_t> images = pattern_images(5, 3, 4, 3);
  write_png(dir.file("one.png"), images.data(), 3, 4, 3);
  const Image back = read_image(dir.file("one.png"), 3);
  BOOST_TEST(back.height == 3);
  BOOST_TEST(back.width == 4);
  BOOST_TEST(std::equal(back.pixels.begin(), back.pixels.end(), images.begin()));
  // 5 images, 2 per row, padding 1: 3 rows -> (3*3 + 4) x (2*4 + 3).
  write_image_grid(dir.file("grid.png"), images.data(), 5, 3, 4, 3, 2, 1);
  const Image grid = read_image(dir.file("grid.png"), 3);
  BOOST_TEST(grid.height == 13);
  BOOST_TEST(grid.width == 11);
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t y = 0; y < 3; ++y)
      for (int64_t x = 0; x < 4; ++x)
        for (int64_t c = 0; c < 3; ++c) {
          const int64_t gy = 1 + (i / 2) * 4 + y, gx = 1 + (i % 2) * 5 + x;
          BOOST_TEST(grid.pixels[size_t((gy * 11 + gx) * 3 + c)] == pattern_pixel(i, y, x, c));
        }
  BOOST_TEST(grid.pixels[0] == 0);  // padding is black
  BOOST_CHECK_THROW(write_png(dir.file("no/such/dir/x.png"), images.data(), 3, 4, 3), Error);
  BOOST_CHECK_THROW(write_png(dir.file("x.png"), images.data(), 3, 4, 5), Error);
}

// What a file declares is not believed before it is read: an idx header asking for 12e9 values
// in 16 bytes is truncated (found by reading, without allocating 12 GB), dims whose product
// overflows are refused, a PNG header of 65500 x 65500 pixels is refused before decoding, a
// truncated JPEG (libjpeg would fill it with grey, warning) and non-UTF-8 captions are errors.
BOOST_AUTO_TEST_CASE(declared_sizes_damaged_images_and_bad_captions_are_refused) {
  TempDir dir;
  const std::vector<std::string> names{"a", "b"};
  write_idx(dir.file("huge"), {60000, 1000, 200}, {}, false);
  write_idx(dir.file("lab"), {60000}, {}, false);
  const auto message = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  std::string e = message([&] { import_idx(dir.file("huge"), dir.file("lab"), dir.file("x.h5"), names); });
  BOOST_TEST(e.find("truncated or corrupt, expected 12000000000 values") != std::string::npos, e);
  write_idx(dir.file("overflow"), {4294967295u, 4294967295u, 4294967295u}, {}, false);
  e = message([&] { import_idx(dir.file("overflow"), dir.file("lab"), dir.file("x.h5"), names); });
  BOOST_TEST(e.find("implausible shape [4294967295, 4294967295, 4294967295] (over 2^40 values)") != std::string::npos, e);

  // A valid 3x4 PNG whose header (and its CRC) then claims 65500 x 65500.
  const std::vector<uint8_t> pixels(3 * 4 * 3, 128);
  write_png(dir.file("small.png"), pixels.data(), 3, 4, 3);
  std::string png;
  {
    std::ifstream in(dir.file("small.png"), std::ios::binary);
    png.assign(std::istreambuf_iterator<char>(in), {});
  }
  for (int at : {16, 20}) png[size_t(at)] = 0, png[size_t(at + 1)] = 0, png[size_t(at + 2)] = char(0xFF), png[size_t(at + 3)] = char(0xDC);
  const uLong crc = crc32(0, reinterpret_cast<const Bytef*>(png.data() + 12), 17);
  for (int k = 0; k < 4; ++k) png[size_t(29 + k)] = char((crc >> (24 - 8 * k)) & 0xFF);
  std::ofstream(dir.file("bomb.png"), std::ios::binary) << png;
  e = message([&] { read_image(dir.file("bomb.png"), 3); });
  BOOST_TEST(e.find("its header declares 65500 x 65500 pixels") != std::string::npos, e);

  write_jpeg(dir.file("whole.jpg"), solid(64, 64, 10, 200, 10));
  const auto size = fs::file_size(dir.file("whole.jpg"));
  fs::copy_file(dir.file("whole.jpg"), dir.file("cut.jpg"));
  fs::resize_file(dir.file("cut.jpg"), size * 2 / 3);
  BOOST_TEST(read_image(dir.file("whole.jpg"), 3).height == 64);
  e = message([&] { read_image(dir.file("cut.jpg"), 3); });
  BOOST_TEST(e.find("cut.jpg': corrupt JPEG: Premature end of JPEG file") != std::string::npos, e);

  const fs::path src = dir.path() / "src";
  fs::create_directories(src / "cat");
  write_png((src / "cat" / "a.png").string(), pixels.data(), 3, 4, 3);
  std::ofstream(dir.file("latin1.tsv")) << "cat/a.png\ta caf\xe9 cat\n";
  FolderImportOptions o;
  o.size = 4;
  o.captions_path = dir.file("latin1.tsv");
  e = message([&] { import_folder(src.string(), dir.file("out.h5"), o); });
  BOOST_TEST(e.find("latin1.tsv' line 1: the caption is not valid UTF-8") != std::string::npos, e);
  BOOST_TEST(!fs::exists(dir.file("out.h5")));
}

BOOST_AUTO_TEST_CASE(image_folder_with_captions) {
  TempDir dir;
  const fs::path src = dir.path() / "src";
  fs::create_directories(src / "cat");
  fs::create_directories(src / "dog" / "puppies");
  fs::create_directories(src / "empty");
  Image cat = solid(20, 30, 200, 10, 10);
  write_png((src / "cat" / "a.png").string(), cat.pixels.data(), 20, 30, 3);
  write_jpeg((src / "cat" / "b.JPG").string(), solid(40, 16, 10, 200, 10));
  write_jpeg((src / "dog" / "c.jpeg").string(), solid(9, 9, 10, 10, 200));
  write_png((src / "dog" / "puppies" / "d.png").string(), cat.pixels.data(), 20, 30, 3);
  std::ofstream(src / "dog" / "notes.txt") << "not an image";
  std::ofstream(dir.file("captions.tsv")) << "path\tcaption\ncat/a.png\ta red cat\ncat/b.JPG\ta green cat\n"
                                          << "dog/c.jpeg\ta blue dog\ndog/puppies/d.png\ta red puppy\nmissing.png\tnobody\n";
  FolderImportOptions o;
  o.size = 8;
  o.captions_path = dir.file("captions.tsv");
  const FolderImportSummary s = import_folder(src.string(), dir.file("out.h5"), o);
  BOOST_TEST(s.images == 4);
  BOOST_TEST(s.class_names == (std::vector<std::string>{"cat", "dog"}), boost::test_tools::per_element());
  BOOST_TEST(s.unused_captions == 1);
  const auto ds = Dataset::open(dir.file("out.h5"));
  BOOST_TEST(ds->info().height == 8);
  BOOST_TEST(ds->info().channels == 3);
  const std::vector<int64_t> labels{0, 0, 1, 1};
  const std::vector<std::string> captions{"a red cat", "a green cat", "a blue dog", "a red puppy"};
  const std::vector<std::array<int, 3>> colours{{200, 10, 10}, {10, 200, 10}, {10, 10, 200}, {200, 10, 10}};
  std::vector<uint8_t> px(4 * 8 * 8 * 3);
  ds->read_range(0, 4, px.data());
  for (int64_t i = 0; i < 4; ++i) {
    BOOST_TEST(ds->label(i) == labels[size_t(i)]);
    BOOST_TEST(ds->caption(i) == captions[size_t(i)]);
    for (int64_t p = 0; p < 64; ++p)
      for (int c = 0; c < 3; ++c)
        BOOST_TEST(std::abs(int(px[size_t((i * 64 + p) * 3 + c)]) - colours[size_t(i)][size_t(c)]) <= 4);  // JPEG is lossy
  }
  // Gray import.
  o.channels = 1;
  o.captions_path.clear();
  import_folder(src.string(), dir.file("gray.h5"), o);
  BOOST_TEST(Dataset::open(dir.file("gray.h5"))->info().channels == 1);
  // A missing caption, a corrupt image, a stray image: refused, naming the culprit, nothing written.
  std::ofstream(dir.file("partial.tsv")) << "cat/a.png\tonly one\n";
  o.channels = 3;
  o.captions_path = dir.file("partial.tsv");
  try {
    import_folder(src.string(), dir.file("bad.h5"), o);
    BOOST_ERROR("missing caption accepted");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find("b.JPG") != std::string::npos, e.what());
  }
  o.captions_path.clear();
  std::ofstream(src / "dog" / "broken.png") << "\x89PNG\r\n\x1a\n garbage";
  try {
    import_folder(src.string(), dir.file("bad.h5"), o);
    BOOST_ERROR("corrupt PNG accepted");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find("broken.png") != std::string::npos, e.what());
  }
  fs::remove(src / "dog" / "broken.png");
  write_png((src / "stray.png").string(), cat.pixels.data(), 20, 30, 3);
  BOOST_CHECK_THROW(import_folder(src.string(), dir.file("bad.h5"), o), Error);
  BOOST_TEST(!fs::exists(dir.file("bad.h5")));
}

BOOST_AUTO_TEST_CASE(h5py_written_files_load_unchanged) {
  const std::string python = python_with_h5py();
  if (python.empty()) {
    BOOST_TEST_MESSAGE("SKIPPED: no python3 with h5py and numpy (Debian: python3-h5py)");
    return;
  }
  TempDir dir;
  // Two variants: chunked+gzip with int32 labels, vlen str names and vlen captions; and contiguous
  // with uint8 labels, fixed-length byte-string names and fixed-length captions.
  const std::string script = R"PY(
import sys, h5py, numpy as np
n, h, w, c = 11, 5, 4, 3
i, y, x, ch = np.meshgrid(np.arange(n), np.arange(h), np.arange(w), np.arange(c), indexing='ij')
images = ((i * 37 + y * 11 + x * 5 + ch * 3 + (i * y) % 7) % 256).astype(np.uint8)
with h5py.File(sys.argv[1], 'w') as f:
    f.create_dataset('images', data=images, chunks=(4, h, w, c), compression='gzip')
    labels = f.create_dataset('labels', data=(np.arange(n) % 3).astype(np.int32))
    labels.attrs['class_names'] = ['zéro', 'un', 'deux']
    f.create_dataset('captions', data=['légende %d' % k for k in range(n)], dtype=h5py.string_dtype())
with h5py.File(sys.argv[2], 'w') as f:
    f['images'] = images
    f['labels'] = (np.arange(n) % 3).astype(np.uint8)
    f['labels'].attrs['class_names'] = np.array([b'a', b'bb', b'ccc'])
    f['captions'] = np.array([('cap %d' % k).encode() for k in range(n)])
)PY";
  std::ofstream(dir.file("make.py")) << script;
  const std::string cmd = python + " " + dir.file("make.py") + " " + dir.file("a.h5") + " " + dir.file("b.h5");
  BOOST_TEST_REQUIRE(std::system(cmd.c_str()) == 0);
  const std::vector<uint8_t> expected = pattern_images(11, 5, 4, 3);
  for (const char* name : {"a.h5", "b.h5"}) {
    const auto ds = Dataset::open(dir.file(name));
    const DatasetInfo& info = ds->info();
    BOOST_TEST(info.size == 11);
    BOOST_TEST(info.channels == 3);
    std::vector<uint8_t> px(expected.size());
    ds->read_range(0, 11, px.data());
    BOOST_TEST(px == expected);
    for (int64_t i = 0; i < 11; ++i) BOOST_TEST(ds->label(i) == i % 3);
    BOOST_TEST(verify_dataset(dir.file(name)).empty());
    // Out of core too (the contiguous file has no chunks).
    const auto disk = Dataset::open(dir.file(name), 0);
    disk->read_range(0, 11, px.data());
    BOOST_TEST(px == expected);
  }
  const auto a = Dataset::open(dir.file("a.h5"));
  BOOST_TEST(a->info().class_names == (std::vector<std::string>{"zéro", "un", "deux"}), boost::test_tools::per_element());
  BOOST_TEST(a->caption(10) == "légende 10");
  BOOST_TEST(a->info().labels_dtype == "int32");
  const auto b = Dataset::open(dir.file("b.h5"));
  BOOST_TEST(b->info().class_names == (std::vector<std::string>{"a", "bb", "ccc"}), boost::test_tools::per_element());
  BOOST_TEST(b->caption(3) == "cap 3");
  BOOST_TEST(b->info().chunk_rows == 0);
}

BOOST_AUTO_TEST_SUITE_END()
