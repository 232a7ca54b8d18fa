#pragma once
// Shared by the tests that drive the command (train, clip, tokenizers): a scratch folder, a tiny
// labelled data set, and running the `tessera` binary (TESSERA_BINARY) as a user would, capturing
// its output and exit status.
#include <boost/test/unit_test.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "train/process_group.h"

namespace tessera::testing {

struct ScratchDir {
  std::filesystem::path path;
  explicit ScratchDir(const std::string& name)
      : path(std::filesystem::temp_directory_path() / ("tessera_" + name + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~ScratchDir() { std::filesystem::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

// n images of 6x6x1 in 3 classes whose mean brightness depends on the class, so a model can learn.
inline void write_tiny_dataset(const std::string& path, int64_t n, uint64_t seed) {
  data::DatasetWriter writer(path, 6, 6, 1, {"dark", "mid", "bright"});
  std::vector<uint8_t> images(static_cast<size_t>(n) * 36);
  std::vector<int64_t> labels(static_cast<size_t>(n));
  uint64_t state = seed * 2654435761u + 1;
  for (int64_t i = 0; i < n; ++i) {
    labels[size_t(i)] = i % 3;
    for (int p = 0; p < 36; ++p) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      images[size_t(i * 36 + p)] = uint8_t(labels[size_t(i)] * 80 + (state >> 58));
    }
  }
  writer.append(images.data(), n, labels.data());
  writer.close();
}

// n gray images of size x size: a bright square whose corner depends on the label (4 classes),
// so that tiny models learn something.
inline void write_square_corners(const std::string& path, int64_t n, int64_t size) {
  data::DatasetWriter writer(path, size, size, 1, {"nw", "ne", "sw", "se"});
  std::vector<uint8_t> images(size_t(n * size * size), 20);
  std::vector<int64_t> labels(static_cast<size_t>(n));
  const int64_t half = size / 2;
  for (int64_t i = 0; i < n; ++i) {
    labels[size_t(i)] = i % 4;
    const int64_t y0 = (i % 4) / 2 * half, x0 = (i % 2) * half;
    for (int64_t y = y0; y < y0 + half - 1; ++y)
      for (int64_t x = x0; x < x0 + half - 1; ++x) images[size_t((i * size + y) * size + x)] = uint8_t(180 + i % 70);
  }
  writer.append(images.data(), n, labels.data());
  writer.close();
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Every value of `key` in the train entries of a run's metrics.jsonl, in order.
inline std::vector<double> train_log_values(const std::string& metrics_jsonl, const std::string& key) {
  std::ifstream in(metrics_jsonl);
  std::vector<double> values;
  const std::string field = "\"" + key + "\": ";
  for (std::string line; std::getline(in, line);) {
    if (line.find("\"split\": \"train\"") == std::string::npos) continue;
    const size_t at = line.find(field);
    if (at != std::string::npos) values.push_back(std::stod(line.substr(at + field.size())));
  }
  return values;
}

// The numbers of a flat JSON object such as `tessera eval --json` prints: {"accuracy": 0.9, ...}.
inline std::map<std::string, double> flat_json_numbers(const std::string& text) {
  std::map<std::string, double> out;
  for (size_t at = text.find('"'); at != std::string::npos; at = text.find('"', at)) {
    const size_t end = text.find('"', at + 1);
    if (end == std::string::npos) break;
    const size_t colon = text.find(':', end);
    if (colon == std::string::npos) break;
    out[text.substr(at + 1, end - at - 1)] = std::strtod(text.c_str() + colon + 1, nullptr);
    at = text.find_first_of(",}", colon);
  }
  return out;
}

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string output;  // stdout and stderr together
};

// Runs a shell command, its stderr with its stdout.
inline RunResult run_shell(const std::string& command) {
  RunResult r;
  FILE* pipe = popen(command.c_str(), "r");
  char buffer[4096];
  while (pipe && std::fgets(buffer, sizeof buffer, pipe)) r.output += buffer;
  const int status = pipe ? pclose(pipe) : -1;
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

// Runs `tessera ARGS` through the shell with the working directory `cwd`.
inline RunResult run_tessera(const std::string& args, const std::string& cwd = ".") {
  return run_shell("cd '" + cwd + "' && exec '" + std::string(TESSERA_BINARY) + "' " + args + " 2>&1");
}

// Why `tessera` cannot run under mpirun here, or "" when it can. setup.sh installs Open MPI, so
// under CI (CI=true) a missing MPI fails the data-parallel tests; elsewhere they are skipped.
inline std::string mpi_missing() {
  const std::string support = train::ProcessGroup::support();
  if (support.rfind("not built in", 0) == 0) return "this build has no MPI: " + support;
  if (std::system("command -v mpirun > /dev/null") != 0) return "mpirun is not installed (setup.sh installs openmpi-bin)";
  return "";
}

// Boost.Test precondition of the data-parallel tests: skipped where MPI is missing, except under CI.
inline boost::test_tools::assertion_result mpi_available(boost::unit_test::test_unit_id) {
  const std::string why = mpi_missing();
  if (why.empty() || std::getenv("CI") != nullptr) return true;
  boost::test_tools::assertion_result skip(false);
  skip.message() << why;
  return skip;
}

// `mpirun -np N tessera ARGS` (Open MPI, as root where need be, more processes than cores allowed).
inline RunResult run_tessera_mpi(int processes, const std::string& args, const std::string& cwd = ".") {
  return run_shell("cd '" + cwd + "' && mpirun --oversubscribe --allow-run-as-root -np " + std::to_string(processes) +
                   " '" + std::string(TESSERA_BINARY) + "' " + args + " 2>&1");
}

}  // namespace tessera::testing
