// `tessera data ...` as a user runs it: exit codes and what the messages name.
#include <sys/wait.h>

#include <boost/test/unit_test.hpp>
#include <fstream>
#include <sstream>

#include "data/image_io.h"
#include "data_test_util.h"

using namespace tessera::data;
using namespace tessera::data::testing;

namespace {

struct Run {
  int status;
  std::string out, err;
};

// Runs the built `tessera` binary with `args`, capturing stdout and stderr.
Run run_tessera(const TempDir& dir, const std::string& args) {
  const std::string out = dir.file("stdout.txt"), err = dir.file("stderr.txt");
  const std::string cmd = std::string(TESSERA_BINARY) + " " + args + " >" + out + " 2>" + err;
  const int raw = std::system(cmd.c_str());
  auto slurp = [](const std::string& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  return {WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, slurp(out), slurp(err)};
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

namespace {
std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
}  // namespace

BOOST_AUTO_TEST_SUITE(data_cli)

BOOST_AUTO_TEST_CASE(verify_and_info) {
  TempDir dir;
  const std::string good = dir.file("good.h5");
  write_pattern_dataset(good, 30, 4, 5, 3, 3, true);
  Run r = run_tessera(dir, "data verify " + good);
  BOOST_TEST(r.status == 0);
  BOOST_TEST(contains(r.out, "ok (30 images 4x5x3, 3 classes, captions)"), r.out);

  r = run_tessera(dir, "data info " + good + " --grid " + dir.file("grid.png") + " --samples 10");
  BOOST_TEST(r.status == 0, r.err);
  BOOST_TEST(contains(r.out, "uint8 [30, 4, 5, 3]"), r.out);
  BOOST_TEST(contains(r.out, "class0"), r.out);
  BOOST_TEST(contains(r.out, "10  33.33%"), r.out);  // 10 of 30 images per class
  BOOST_TEST(contains(r.out, "[2] caption 2"), r.out);
  const Image grid = read_image(dir.file("grid.png"));
  BOOST_TEST(grid.height == 2 * 4 + 3 * 2);  // 10 images, 8 per row: 2 rows
  BOOST_TEST(grid.width == 8 * 5 + 9 * 2);
  // The grid never goes over the data set or any file that is not a PNG (an earlier grid is rewritten).
  const std::string before = read_bytes(good);
  r = run_tessera(dir, "data info " + good + " --grid " + good);
  BOOST_TEST(r.status == 1);
  BOOST_TEST(contains(r.err, "is the data set itself"), r.err);
  BOOST_TEST(read_bytes(good) == before);
  { std::ofstream(dir.file("notes.txt")) << "mine"; }
  r = run_tessera(dir, "data info " + good + " --grid " + dir.file("notes.txt"));
  BOOST_TEST(r.status == 1);
  BOOST_TEST(contains(r.err, "exists and is not a PNG"), r.err);
  BOOST_TEST(read_bytes(dir.file("notes.txt")) == "mine");
  r = run_tessera(dir, "data info " + good + " --grid " + dir.file("grid.png") + " --samples 4");
  BOOST_TEST(r.status == 0, r.err);

  // A corrupt file: verify and info both refuse it, naming the file.
  const std::string bad = dir.file("bad.h5");
  write_pattern_dataset(bad, 300, 8, 8, 3);
  std::filesystem::resize_file(bad, std::filesystem::file_size(bad) / 3);
  r = run_tessera(dir, "data verify " + good + " " + bad);
  BOOST_TEST(r.status == 1);
  BOOST_TEST(contains(r.err, bad), r.err);
  BOOST_TEST(contains(r.err, "INVALID"), r.err);
  BOOST_TEST(!contains(r.err, "HDF5-DIAG"), r.err);  // HDF5's own error stack stays silent
  r = run_tessera(dir, "data info " + bad);
  BOOST_TEST(r.status == 1);
  BOOST_TEST(contains(r.err, bad), r.err);
  r = run_tessera(dir, "data verify " + dir.file("missing.h5"));
  BOOST_TEST(r.status == 1);
  BOOST_TEST(contains(r.err, "no such file"), r.err);
}

BOOST_AUTO_TEST_CASE(bad_arguments) {
  TempDir dir;
  Run r = run_tessera(dir, "data import folder");
  BOOST_TEST(r.status == 1);
  BOOST_TEST(contains(r.err, "source folder"), r.err);
  r = run_tessera(dir, "data import fashion-mnist --out " + dir.file("fm") + " --source " + dir.file("nowhere"));
  BOOST_TEST(r.status == 1);
  BOOST_TEST(contains(r.err, "not found"), r.err);
  r = run_tessera(dir, "data import folder " + dir.path().string() + " --out x.h5 --size many");
  BOOST_TEST(r.status == 1);
  BOOST_TEST(contains(r.err, "--size"), r.err);
  r = run_tessera(dir, "data frobnicate");
  BOOST_TEST(r.status == 2);
  r = run_tessera(dir, "data --help");
  BOOST_TEST(r.status == 0);
  BOOST_TEST(contains(r.out, "import fashion-mnist"), r.out);
}

BOOST_AUTO_TEST_CASE(clips_import_verify_and_report) {
  TempDir dir;
  write_scene_items_dir(dir.path() / "items", 32, 16);
  const std::string items = (dir.path() / "items").string(), out = dir.file("clips");
  for (const char* frames : {"0", "65", "-2"}) {
    Run r = run_tessera(dir, "data import scenes --from " + items + " --out " + out + " --frames " + frames + " --train 10 --test 4");
    BOOST_TEST(r.status == 1, frames);
    BOOST_TEST(contains(r.err, std::string("--frames ") + frames), r.err);
    BOOST_TEST(!std::filesystem::exists(out));
  }
  Run r = run_tessera(dir, "data import scenes --from " + items + " --out " + out +
                               " --frames 4 --size 48 --scale 10-20 --train 24 --test 8 --threads 2");
  BOOST_TEST_REQUIRE(r.status == 0, r.err);
  BOOST_TEST(contains(r.out, "clips train     24/24"), r.out);
  BOOST_TEST(contains(r.out, "(24 clips of 4 frames)"), r.out);
  r = run_tessera(dir, "data verify " + out + "/train.h5 " + out + "/test.h5");
  BOOST_TEST(r.status == 0, r.err);
  BOOST_TEST(contains(r.out, "ok (24 clips of 4 frames 48x48x1, up to 4 objects of 4 classes"), r.out);
  BOOST_TEST(contains(r.out, "ok (8 clips of 4 frames"), r.out);
  const std::string grid = dir.file("clips.png");
  r = run_tessera(dir, "data report " + out + "/test.h5 --grid " + grid + " --samples 3");
  BOOST_TEST(r.status == 0, r.err);
  for (const char* part : {"uint8 [8, 4, 48, 48, 1]  (N, F, H, W, C)", "clips       8 of 4 frames (32 scenes)", "per frame (K = 4)",
                           "boxes float32 [N, F, K, 4]", "captions    3 per clip", "clip 0:", "caption  in all frames: ",
                           "  frame      ", "  total      ", "  count      ", "in which frame", "first 3 clips, a row of 4 frames"})
    BOOST_TEST(contains(r.out, part), "'" << part << "' not in:\n" << r.out);
  // One row per clip, its four frames side by side (48 x 3 zoom, padding 4).
  const Image picture = read_image(grid);
  BOOST_TEST(picture.height == 3 * 144 + 4 * 4);
  BOOST_TEST(picture.width == 4 * 144 + 5 * 4);
  r = run_tessera(dir, "data --help");
  BOOST_TEST(contains(r.out, "--frames"), r.out);
}

BOOST_AUTO_TEST_SUITE_END()
