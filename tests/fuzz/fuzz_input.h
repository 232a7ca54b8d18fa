#pragma once
// Shared by the libFuzzer harnesses: the readers under test take file paths, so each input is
// written to a file of this process in /dev/shm (memory, not disk) and the reader given its path.
// A tessera::Error is the expected answer to a bad input; anything else — a crash, a sanitizer
// report, another exception escaping, a hang (libFuzzer's -timeout) — is a finding.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>

#include "autograd/error.h"
#include "data/hdf5_util.h"

namespace tessera::fuzzing {

inline std::string scratch_path(const std::string& name) {
  const std::filesystem::path dir = std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
  return (dir / ("tessera-fuzz-" + std::to_string(::getpid()) + "-" + name)).string();
}

// Writes the input to `path` (replacing what the previous input left).
inline void write_input(const std::string& path, const uint8_t* data, size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
}

// Runs `read`; a tessera::Error is a refusal, which is fine.
inline void expect_refusal_or_success(const std::function<void()>& read) {
  data::h5::silence_errors();
  try {
    read();
  } catch (const Error&) {
  }
}

}  // namespace tessera::fuzzing
