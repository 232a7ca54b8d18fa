// `tessera data`: import datasets, describe them, check them. The work lives in data/; this file
// only parses arguments and prints.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>

#include "autograd/error.h"
#include "data/dataset.h"
#include "data/import.h"
#include "data/png.h"
#include "data/scene_import.h"
#include "data/scene_report.h"
#include "train/command.h"
#include "train/experiment.h"

namespace tessera::cli {
namespace {

using namespace tessera::data;

constexpr const char* kUsage =
    "usage:\n"
    "  tessera data import fashion-mnist --out DIR [--source DIR] [--overwrite]\n"
    "      Debian's dataset-fashion-mnist (default source /usr/share/datasets/fashion-mnist)\n"
    "      -> DIR/train.h5 (60000 images) and DIR/test.h5 (10000), 28x28x1 with the ten class names.\n"
    "  tessera data import scenes --from DIR --out DIR [--size 64] [--objects 1-4] [--scale 14-32]\n"
    "                             [--max-iou 0.2] [--seed 0] [--train 60000] [--test 10000] [--threads N]\n"
    "                             [--frames 1] [--overwrite]\n"
    "      Multi-object scenes from a labelled gray set (DIR/train.h5 and test.h5 as 'import fashion-mnist'\n"
    "      writes): items resized so their longer side is in the scale range, placed with box IoU at\n"
    "      most max-iou, composited with max on black; with boxes, classes, captions and questions\n"
    "      (docs/DATA.md). --frames F (1..64) > 1 makes --train and --test clips of F scenes each,\n"
    "      with text about the whole clip. The same arguments give byte-identical files.\n"
    "  tessera data import folder SRC --out FILE [--size S] [--channels 1|3] [--captions FILE]\n"
    "                             [--overwrite]\n"
    "      An image-folder tree (one sub-folder per class, PNG/JPEG; or images directly in SRC,\n"
    "      unlabelled), shorter side scaled to S (default 64) and centre-cropped to SxS.\n"
    "      --captions adds captions from a TSV of 'path<TAB>caption' (paths relative to SRC).\n"
    "      Imports replace an existing output only when an earlier import wrote it (its written_by\n"
    "      attribute); --overwrite replaces any file, so a data set made elsewhere is never lost by mistake.\n"
    "  tessera data info FILE [--grid PNG | --no-grid] [--samples N]      (or: tessera data report ...)\n"
    "      Counts, shapes, dtypes, class histogram, a few captions, and a PNG grid of the first N\n"
    "      images (default N=64, written to FILE's folder as <name>-samples.png). Scene files: objects\n"
    "      per scene and class, captions and questions of a few scenes, the most common answer of each\n"
    "      question type, and the first N (default 16) scenes with their boxes and class names; clip\n"
    "      files the same per frame, and the first N (default 4) clips, a row of frames each.\n"
    "  tessera data verify FILE\n"
    "      Checks the schema and decodes every chunk; exits 1 on any breach.";

// Splits "--key value" options from positional arguments; `flags` take no value.
struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;
};

Args parse(const std::vector<std::string>& args, const std::vector<std::string>& valued,
           const std::vector<std::string>& flags, const std::string& what) {
  Args out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0) {
      out.positional.push_back(a);
      continue;
    }
    if (std::find(flags.begin(), flags.end(), a) != flags.end()) {
      out.options[a] = "";
    } else if (std::find(valued.begin(), valued.end(), a) != valued.end()) {
      if (i + 1 >= args.size()) fail("{}: {} needs a value", what, a);
      out.options[a] = args[++i];
    } else {
      fail("{}: unknown option '{}' (see 'tessera data --help')", what, a);
    }
  }
  return out;
}

int64_t parse_int(const std::string& text, const std::string& option) {
  try {
    size_t used = 0;
    const long long v = std::stoll(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  fail("{} expects an integer, got '{}'", option, text);
}

// "LOW-HIGH" (or one number for both) for --objects and --scale.
std::pair<int64_t, int64_t> parse_range(const std::string& text, const std::string& option) {
  const size_t dash = text.find('-');
  if (dash == std::string::npos) {
    const int64_t v = parse_int(text, option);
    return {v, v};
  }
  return {parse_int(text.substr(0, dash), option), parse_int(text.substr(dash + 1), option)};
}

double parse_number(const std::string& text, const std::string& option) {
  try {
    size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  fail("{} expects a number, got '{}'", option, text);
}

int import_scenes_command(const std::vector<std::string>& args) {
  const Args a = parse(args, {"--from", "--out", "--size", "--objects", "--scale", "--max-iou", "--seed", "--train", "--test", "--threads",
                              "--frames"},
                       {"--overwrite"}, "data import scenes");
  if (!a.positional.empty()) fail("data import scenes: unexpected argument '{}'", a.positional[0]);
  if (!a.options.count("--from")) fail("data import scenes: --from DIR is required (a folder with train.h5 and test.h5 of items)");
  if (!a.options.count("--out")) fail("data import scenes: --out DIR is required");
  SceneOptions o;
  auto option = [&](const char* name) -> const std::string* { return a.options.count(name) ? &a.options.at(name) : nullptr; };
  if (auto v = option("--size")) o.size = parse_int(*v, "--size");
  if (auto v = option("--objects")) std::tie(o.min_objects, o.max_objects) = parse_range(*v, "--objects");
  if (auto v = option("--scale")) std::tie(o.min_scale, o.max_scale) = parse_range(*v, "--scale");
  if (auto v = option("--max-iou")) o.max_iou = parse_number(*v, "--max-iou");
  if (auto v = option("--seed")) o.seed = uint64_t(parse_int(*v, "--seed"));
  if (auto v = option("--frames")) o.frames = parse_int(*v, "--frames");
  const int64_t train = option("--train") ? parse_int(*option("--train"), "--train") : 60000;
  const int64_t test = option("--test") ? parse_int(*option("--test"), "--test") : 10000;
  const int threads = option("--threads") ? train::parse_threads("--threads", *option("--threads")) : 0;
  const auto start = std::chrono::steady_clock::now();
  int64_t finished_before = 0;  // samples of splits already written, for the overall rate
  const char* unit = o.frames > 1 ? "clips" : "scenes";
  const auto progress = [&](const std::string& split, int64_t done, int64_t total) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double rate = double(finished_before + done) / std::max(seconds, 1e-9);
    const double left = double(total - done + (split == "train" ? test : 0)) / std::max(rate, 1e-9);
    fmt::print("{} {:<5} {:>6}/{}  {:.0f} {}/s  ETA {:.0f}s\n", unit, split, done, total, rate, unit, left);
    std::fflush(stdout);
    if (done == total) finished_before += total;
  };
  const SceneImportSummary s = import_scenes(a.options.at("--from"), a.options.at("--out"), o, train, test, threads, progress,
                                              a.options.count("--overwrite") > 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::filesystem::path out = a.options.at("--out");
  const std::string clips = o.frames > 1 ? fmt::format(" of {} frames", o.frames) : "";
  fmt::print("wrote {} ({} {}{}) and {} ({} {}{}) in {:.1f}s\n", (out / "train.h5").string(), s.train, unit, clips,
             (out / "test.h5").string(), s.test, unit, clips, seconds);
  return 0;
}

int import_command(const std::vector<std::string>& args) {
  if (args.empty()) fail("data import: which format? 'fashion-mnist', 'scenes' or 'folder'");
  const std::string format = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (format == "fashion-mnist") {
    const Args a = parse(rest, {"--out", "--source"}, {"--overwrite"}, "data import fashion-mnist");
    if (!a.positional.empty()) fail("data import fashion-mnist: unexpected argument '{}'", a.positional[0]);
    if (!a.options.count("--out")) fail("data import fashion-mnist: --out DIR is required");
    const std::string out = a.options.at("--out");
    const std::string source = a.options.count("--source") ? a.options.at("--source") : kFashionMnistDir;
    const FashionMnistSummary s = import_fashion_mnist(out, source, a.options.count("--overwrite") > 0);
    fmt::print("wrote {} ({} images) and {} ({} images)\n", (std::filesystem::path(out) / "train.h5").string(), s.train,
               (std::filesystem::path(out) / "test.h5").string(), s.test);
    return 0;
  }
  if (format == "scenes") return import_scenes_command(rest);
  if (format == "folder") {
    const Args a = parse(rest, {"--out", "--size", "--channels", "--captions"}, {"--overwrite"}, "data import folder");
    if (a.positional.size() != 1) fail("data import folder: expected one source folder, got {}", a.positional.size());
    if (!a.options.count("--out")) fail("data import folder: --out FILE is required");
    FolderImportOptions o;
    if (a.options.count("--size")) o.size = parse_int(a.options.at("--size"), "--size");
    if (a.options.count("--channels")) o.channels = parse_int(a.options.at("--channels"), "--channels");
    if (a.options.count("--captions")) o.captions_path = a.options.at("--captions");
    o.overwrite = a.options.count("--overwrite") > 0;
    const FolderImportSummary s = import_folder(a.positional[0], a.options.at("--out"), o);
    fmt::print("wrote {}: {} images of {}x{}x{}, {} classes{}\n", a.options.at("--out"), s.images, o.size, o.size,
               o.channels, s.class_names.size(), o.captions_path.empty() ? "" : ", with captions");
    if (s.unused_captions > 0)
      fmt::print(stderr, "warning: {} caption lines name images not found under {}\n", s.unused_captions, a.positional[0]);
    return 0;
  }
  fail("data import: unknown format '{}' (expected 'fashion-mnist', 'scenes' or 'folder')", format);
}

// Where the sample grid goes. Never over the data set itself, nor over an existing file that is
// not a PNG (a grid of an earlier `data info`, which is rewritten): the grid is a by-product, and
// nothing already written may be lost to it.
std::string grid_path(const Args& a, const std::string& path) {
  const std::string grid = a.options.count("--grid") ? a.options.at("--grid")
                                                     : std::filesystem::path(path).replace_extension("").string() + "-samples.png";
  std::error_code ec;
  if (std::filesystem::exists(grid) && std::filesystem::equivalent(grid, path, ec))
    fail("data info: --grid {} is the data set itself; give another PNG path", grid);
  data::refuse_non_png_output(grid, "data info: --grid");
  return grid;
}

// A scene file: objects per scene and per class, the text of a few scenes, how answerable the
// questions are blind, and a grid of scenes with their boxes. A clip file: the same per frame,
// the text of a few clips, and a grid with a row of frames per clip.
int scene_info(const Dataset& ds, const Args& a) {
  const DatasetInfo& info = ds.info();
  const int64_t F = info.frames;
  const bool clips = F > 1;
  const char* sample = clips ? "clip" : "scene";
  const char* frame = clips ? "frame" : "scene";
  std::vector<int64_t> per_count(size_t(info.max_objects + 1), 0), per_class(info.object_class_names.size(), 0);
  int64_t objects = 0;
  for (int64_t i = 0; i < info.size; ++i)
    for (int64_t f = 0; f < F; ++f) {
      const ObjectsView v = ds.objects(i, f);
      ++per_count[size_t(v.count)];
      objects += v.count;
      for (int64_t k = 0; k < v.count; ++k)
        if (v.classes[k] >= 0 && size_t(v.classes[k]) < per_class.size()) ++per_class[size_t(v.classes[k])];
    }
  if (clips) fmt::print("clips       {} of {} frames ({} scenes)\n", info.size, F, info.size * F);
  fmt::print("objects     {} in all, {:.2f} per {} (K = {}), {} classes; boxes float32 [{}, K, 4]\n", objects,
             double(objects) / double(info.size * F), frame, info.max_objects, info.object_class_names.size(),
             clips ? "N, F" : "N");
  for (size_t n = 0; n < per_count.size(); ++n)
    if (per_count[n]) fmt::print("  {} object{} {:>8} {}s\n", n, n == 1 ? " " : "s", per_count[n], frame);
  for (size_t c = 0; c < per_class.size(); ++c)
    fmt::print("  {:>3} {:<12} {:>8} objects\n", c, info.object_class_names[c], per_class[c]);
  fmt::print("captions    {} per {}{}\n", info.captions_per_image, sample, info.has_swapped_captions ? ", and a place-swapped one" : "");
  fmt::print("questions   {} per {}\n", info.questions_per_image, sample);
  for (int64_t i = 0; i < std::min<int64_t>(3, info.size); ++i) {
    fmt::print("  {} {}:\n", sample, i);
    for (const std::string& c : ds.captions(i)) fmt::print("    caption  {}\n", c);
    if (info.has_swapped_captions && !ds.swapped_caption(i).empty()) fmt::print("    swapped  {}\n", ds.swapped_caption(i));
    if (info.questions_per_image > 0) {
      const auto q = ds.questions(i), r = ds.answers(i);
      const auto t = ds.question_types(i);
      for (size_t k = 0; k < q.size(); ++k)
        fmt::print("    {:<9} {} -> {}\n", size_t(t[k]) < info.question_type_names.size() ? info.question_type_names[size_t(t[k])] : "?", q[k], r[k]);
    }
  }
  if (info.questions_per_image > 0) {
    fmt::print("answers without looking (always the most common answer of the type):\n");
    for (const QuestionTypeStats& s : question_stats(ds)) {
      const int64_t naming = s.naming_present + s.naming_absent;
      fmt::print("  {:<10} {:>8} questions, {:>3} answers; '{}' {:.1f} %{}\n", s.type, s.questions, s.distinct_answers,
                 s.majority_answer, 100 * s.majority_share,
                 naming ? fmt::format("; of those naming a class, {:.1f} % name an absent one",
                                      100.0 * double(s.naming_absent) / double(naming))
                        : "");
    }
  }
  if (!a.options.count("--no-grid")) {
    const int64_t fallback = clips ? 4 : 16;
    const int64_t samples = std::clamp<int64_t>(
        a.options.count("--samples") ? parse_int(a.options.at("--samples"), "--samples") : fallback, 1, info.size);
    const std::string grid = grid_path(a, info.path);
    // Long clips smaller, so that a row stays a sensible width.
    write_scene_grid(grid, ds, 0, samples, F <= 8 ? 3 : F <= 16 ? 2 : 1);
    if (clips) fmt::print("samples     first {} clips, a row of {} frames each, with their boxes -> {}\n", samples, F, grid);
    else fmt::print("samples     first {} scenes with their boxes -> {}\n", samples, grid);
  }
  return 0;
}

int info_command(const std::vector<std::string>& args) {
  const Args a = parse(args, {"--grid", "--samples"}, {"--no-grid"}, "data info");
  if (a.positional.size() != 1) fail("data info: expected one dataset file");
  const std::string path = a.positional[0];
  const auto ds = Dataset::open(path, 0, true);  // nothing loaded up front; the grid reads a few images
  const DatasetInfo& info = ds->info();
  fmt::print("file        {}\n", info.path);
  const std::string layout = info.chunk_rows > 0 ? fmt::format("chunks of {} images, {}", info.chunk_rows, info.compression)
                                                 : std::string("contiguous, uncompressed");
  if (info.frames > 1)
    fmt::print("images      uint8 [{}, {}, {}, {}, {}]  (N, F, H, W, C); {}\n", info.size, info.frames, info.height, info.width,
               info.channels, layout);
  else
    fmt::print("images      uint8 [{}, {}, {}, {}]  (N, H, W, C); {}\n", info.size, info.height, info.width, info.channels,
               layout);
  if (info.has_labels) {
    fmt::print("labels      {} [{}], {} classes\n", info.labels_dtype, info.size, info.class_names.size());
    std::vector<int64_t> counts(info.class_names.size(), 0);
    for (int64_t l : ds->labels()) ++counts[size_t(l)];
    const int64_t most = *std::max_element(counts.begin(), counts.end());
    size_t width = 5;
    for (const auto& n : info.class_names) width = std::max(width, n.size());
    for (size_t k = 0; k < counts.size(); ++k) {
      const int bar = most ? int(40 * counts[k] / most) : 0;
      fmt::print("  {:>3} {:<{}} {:>8} {:6.2f}%  {}\n", k, info.class_names[k], width, counts[k],
                 100.0 * double(counts[k]) / double(info.size), std::string(size_t(bar), '#'));
    }
  } else {
    fmt::print("labels      none\n");
  }
  if (info.has_objects) return scene_info(*ds, a);
  if (info.has_captions) {
    fmt::print("captions    {} strings\n", info.size);
    for (int64_t i = 0; i < std::min<int64_t>(3, info.size); ++i) fmt::print("  [{}] {}\n", i, ds->caption(i));
  } else {
    fmt::print("captions    none\n");
  }
  if (!a.options.count("--no-grid")) {
    const int64_t samples =
        std::clamp<int64_t>(a.options.count("--samples") ? parse_int(a.options.at("--samples"), "--samples") : 64, 1, info.size);
    const std::string grid = grid_path(a, path);
    std::vector<uint8_t> images(size_t(samples * ds->image_bytes()));
    ds->read_range(0, samples, images.data());
    if (info.channels > 4) fail("data info: cannot draw {}-channel images as PNG (use --no-grid)", info.channels);
    // Clips without objects: a row of frames each.
    write_image_grid(grid, images.data(), samples * info.frames, info.height, info.width, info.channels,
                     info.frames > 1 ? info.frames : 8, 2);
    fmt::print("samples     first {} {} -> {}\n", samples, info.frames > 1 ? "clips" : "images", grid);
  }
  return 0;
}

int verify_command(const std::vector<std::string>& args) {
  const Args a = parse(args, {}, {}, "data verify");
  if (a.positional.empty()) fail("data verify: expected one or more dataset files");
  int status = 0;
  for (const std::string& path : a.positional) {
    const std::vector<std::string> breaches = verify_dataset(path);
    if (breaches.empty()) {
      const auto ds = Dataset::open(path, 0, true);
      const DatasetInfo& info = ds->info();
      const std::string samples = info.frames > 1 ? fmt::format("{} clips of {} frames", info.size, info.frames)
                                                  : fmt::format("{} images", info.size);
      const char* sample = info.frames > 1 ? "clip" : "image";
      fmt::print("{}: ok ({} {}x{}x{}{}{}{}{})\n", path, samples, info.height, info.width, info.channels,
                 info.has_labels ? fmt::format(", {} classes", info.class_names.size()) : "",
                 info.has_objects ? fmt::format(", up to {} objects of {} classes", info.max_objects, info.object_class_names.size()) : "",
                 !info.has_captions ? "" : info.captions_per_image == 1 ? ", captions" : fmt::format(", {} captions per {}", info.captions_per_image, sample),
                 info.questions_per_image ? fmt::format(", {} questions per {}", info.questions_per_image, sample) : "");
    } else {
      for (const std::string& b : breaches) fmt::print(stderr, "{}: INVALID: {}\n", path, b);
      status = 1;
    }
  }
  return status;
}

int run_data(const std::vector<std::string>& args) {
  if (args.empty()) {
    fmt::print(stderr, "{}\n", kUsage);
    return 2;
  }
  const std::string sub = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (sub == "import") return import_command(rest);
  if (sub == "info" || sub == "report") return info_command(rest);
  if (sub == "verify") return verify_command(rest);
  fmt::print(stderr, "tessera data: unknown subcommand '{}'\n{}\n", sub, kUsage);
  return 2;
}

const CommandRegistration registration{
    {"data", "import datasets (fashion-mnist, image folders), describe and verify them", kUsage, run_data}};

}  // namespace
}  // namespace tessera::cli
