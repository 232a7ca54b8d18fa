#pragma once
// What the PyTorch parity tests share: a temporary directory, and the raw files they exchange
// with the reference scripts (Tessera writes float32, the reference answers in float64).
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace tessera::test {

namespace fs = std::filesystem;

inline void write_f32(const fs::path& path, const Tensor& t) {
  const std::vector<float> v = t.contiguous().to_vector<float>();
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * sizeof(float)));
  if (!out) BOOST_FAIL("cannot write " << path);
}

inline std::vector<double> read_f64(const fs::path& path, size_t count) {
  std::vector<double> v(count);
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(v.data()), std::streamsize(count * sizeof(double)));
  if (!in || in.peek() != std::char_traits<char>::eof())
    BOOST_FAIL("reference file " << path << " is missing or does not hold " << count << " float64 values");
  return v;
}

// A temporary directory, removed with everything in it.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& prefix = "tessera_torch") {
    std::string tmpl = (fs::temp_directory_path() / (prefix + "_XXXXXX")).string();
    if (!mkdtemp(tmpl.data())) BOOST_FAIL("mkdtemp failed for " << tmpl);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

}  // namespace tessera::test
