#pragma once
// Shared by the libFuzzer harnesses. The readers under test take file paths, so each input is
// written to a file of this process in /dev/shm (memory, not disk). Each harness asserts what the
// reader promises, and a broken promise aborts, which libFuzzer reports with the input:
//   - a bad input is refused with a tessera::Error whose message names the file (refused_or_read);
//     any other exception escaping, a crash, a sanitizer report or a hang is a finding too;
//   - what is read is what was written: each harness checks what it read against itself (sizes,
//     ranges) or writes it back and reads it again (round trips).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include "autograd/error.h"
#include "autograd/tensor.h"
#include "data/hdf5_util.h"

namespace tessera::fuzzing {

// A file of this process named `name`, in /dev/shm when there is one.
inline std::string scratch_path(const std::string& name) {
  const std::filesystem::path dir = std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
  return (dir / ("tessera-fuzz-" + std::to_string(::getpid()) + "-" + name)).string();
}

// Writes the input to the scratch file `name` (replacing the previous input) and returns its path.
inline const std::string& input_file(const std::string& name, const uint8_t* data, size_t size) {
  static std::map<std::string, std::string> paths;
  const std::string& path = paths.try_emplace(name, scratch_path(name)).first->second;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || (size && std::fwrite(data, 1, size, f) != size)) std::abort();
  std::fclose(f);
  return path;
}

// A broken promise: say which, and abort so that libFuzzer keeps the input.
[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "fuzz finding: %s\n", what.c_str());
  std::abort();
}

inline void assert_holds(bool holds, const std::string& what) {
  if (!holds) finding(what);
}

// Runs `read`: it may succeed, or refuse with a tessera::Error that names `file` (the input's path,
// or another name the message must hold).
inline void refused_or_read(const std::string& file, const std::function<void()>& read) {
  data::h5::silence_errors();
  try {
    read();
  } catch (const Error& e) {
    const std::string message = e.what();
    assert_holds(message.find(file) != std::string::npos, "the refusal does not name " + file + ": " + message);
  }
}

// Same shape, type and bytes.
inline bool same_tensor(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  if (a.numel() == 0) return true;
  const Tensor x = a.contiguous(), y = b.contiguous();
  return std::memcmp(x.raw_data(), y.raw_data(), size_t(x.numel()) * element_size(x.dtype())) == 0;
}

}  // namespace tessera::fuzzing
