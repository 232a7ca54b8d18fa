// Loader throughput: images/s that the data loader delivers from a Fashion-MNIST dataset file,
// with and without augmentation and in-memory vs out-of-core reads. The consumer does nothing,
// so this is the most a training step could be fed.
//
// usage: loader_bench FILE.h5 [--batch 128] [--seconds 3]
//   FILE.h5 e.g. from `tessera data import fashion-mnist --out data/fmnist`
#include <fmt/format.h>

#include <chrono>
#include <string>

#include "data/loader.h"

using namespace tessera::data;

namespace {

struct Result {
  double images_per_second;
  int64_t batches;
};

Result run(const std::shared_ptr<Dataset>& ds, LoaderOptions o, double seconds) {
  Loader loader(ds, o);
  loader.next();  // warm-up: thread started, first epoch order built
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  int64_t images = 0, batches = 0;
  double elapsed = 0;
  while (elapsed < seconds) {
    const Batch b = loader.next();
    images += b.images.size(0);
    ++batches;
    elapsed = std::chrono::duration<double>(clock::now() - start).count();
  }
  return {double(images) / elapsed, batches};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "usage: loader_bench FILE.h5 [--batch N] [--seconds S]\n");
    return 2;
  }
  const std::string path = argv[1];
  int64_t batch = 128;
  double seconds = 3;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    if (key == "--batch") batch = std::stoll(argv[i + 1]);
    else if (key == "--seconds") seconds = std::stod(argv[i + 1]);
    else {
      fmt::print(stderr, "unknown option {}\n", key);
      return 2;
    }
  }
  try {
    const auto in_memory = Dataset::open(path);
    const auto on_disk = Dataset::open(path, 0);
    const DatasetInfo& info = in_memory->info();
    fmt::print("dataset {}: {} images {}x{}x{}, chunks of {} ({}); batch {}\n", path, info.size, info.height,
               info.width, info.channels, info.chunk_rows, info.compression, batch);
    fmt::print("{:<48} {:>12} {:>10}\n", "configuration", "images/s", "batches");
    struct Case {
      const char* name;
      bool disk, shuffle, augment;
      int prefetch;
      int64_t window = 0;
    };
    for (const Case c : {Case{"in memory, shuffle, prefetch 2", false, true, false, 2},
                         Case{"in memory, shuffle, no prefetch", false, true, false, 0},
                         Case{"in memory, shuffle, flip + crop(pad 2)", false, true, true, 2},
                         Case{"out of core, sequential, prefetch 2", true, false, false, 2},
                         Case{"out of core, shuffle, prefetch 2", true, true, false, 2},
                         Case{"out of core, chunk-local shuffle (window 1024)", true, true, false, 2, 1024}}) {
      LoaderOptions o;
      o.batch_size = batch;
      o.shuffle = c.shuffle;
      o.prefetch = c.prefetch;
      o.shuffle_window = c.window;
      o.mean = {0.2860f};
      o.std = {0.3530f};
      if (c.augment) o.augment = {true, 2};
      const Result r = run(c.disk ? on_disk : in_memory, o, seconds);
      fmt::print("{:<48} {:>12.0f} {:>10}\n", c.name, r.images_per_second, r.batches);
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "loader_bench: {}\n", e.what());
    return 1;
  }
  return 0;
}
