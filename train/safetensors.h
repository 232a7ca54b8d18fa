#pragma once
// safetensors files (https://github.com/huggingface/safetensors): what PyTorch users load weights
// from. Layout: an 8-byte little-endian header length N, N bytes of JSON naming each tensor's
// dtype, shape and [begin, end) byte range in the data that follows (plus an optional string map
// "__metadata__"), then the raw little-endian data. Read and written here without the Rust
// library, which Debian does not package; the format is small and fully specified.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "autograd/tensor.h"

namespace tessera::train {

using NamedTensorList = std::vector<std::pair<std::string, Tensor>>;

struct SafetensorsFile {
  NamedTensorList tensors;                     // in data order
  std::map<std::string, std::string> metadata;  // "__metadata__"
  std::map<std::string, std::string> dtypes;    // each tensor's dtype as the file stored it (BF16 ...)
};

// Writes atomically (a temporary file beside `path`, fsynced, renamed into place), so a kill or a
// full disk leaves the old file or none, never a torn one. f32, f64, i32, i64 and u8 tensors are
// written as F32, F64, I32, I64 and U8.
void write_safetensors(const std::string& path, const NamedTensorList& tensors,
                       const std::map<std::string, std::string>& metadata);

// Reads every tensor: F32, F64, I32, I64, U8 and BOOL as themselves (BOOL as u8), BF16 and F16
// widened to f32 exactly. Sizes the header declares are checked against the file's before
// anything is allocated; every error names the file and the tensor or header field at fault.
SafetensorsFile read_safetensors(const std::string& path);

// Whether `path` names a safetensors file (by its extension).
bool is_safetensors_path(const std::string& path);

}  // namespace tessera::train
