#include "train/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "autograd/error.h"
#include "data/hdf5_util.h"
#include "train/atomic_file.h"
#include "kernels/bf16.h"
#include "train/json.h"
#include "train/json_value.h"

namespace tessera::train {

namespace {

// The largest header we accept: the format's own reader stops at 100 MB.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct StoredType {
  const char* name;
  size_t bytes;
};

StoredType stored_type(DType t) {
  switch (t) {
    case DType::f32: return {"F32", 4};
    case DType::f64: return {"F64", 8};
    case DType::i32: return {"I32", 4};
    case DType::i64: return {"I64", 8};
    case DType::u8: return {"U8", 1};
  }
  fail("safetensors: unsupported dtype");
}

// What a file's dtype string becomes here: the tensor's dtype and the stored element size.
bool read_type(const std::string& name, DType& dtype, size_t& bytes) {
  if (name == "F32") dtype = DType::f32, bytes = 4;
  else if (name == "F64") dtype = DType::f64, bytes = 8;
  else if (name == "I32") dtype = DType::i32, bytes = 4;
  else if (name == "I64") dtype = DType::i64, bytes = 8;
  else if (name == "U8" || name == "BOOL") dtype = DType::u8, bytes = 1;
  else if (name == "BF16" || name == "F16") dtype = DType::f32, bytes = 2;
  else return false;
  return true;
}

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF, bits;
  if (exponent == 0x1F) {
    bits = sign | 0x7F800000 | (mantissa << 13);  // inf, NaN
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    exponent = 113;
    while ((mantissa & 0x400) == 0) mantissa <<= 1, --exponent;
    bits = sign | (exponent << 23) | ((mantissa & 0x3FF) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}


}  // namespace

bool is_safetensors_path(const std::string& path) {
  return std::filesystem::path(path).extension() == ".safetensors";
}

void write_safetensors(const std::string& path, const NamedTensorList& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::string header = "{";
  if (!metadata.empty()) {
    JsonObject meta;
    for (const auto& [k, v] : metadata) meta.add(k, v);
    header += "\"__metadata__\": " + meta.str();
  }
  uint64_t offset = 0;
  std::vector<Tensor> data;
  for (const auto& [name, tensor] : tensors) {
    if (name.empty() || name == "__metadata__") fail("safetensors {}: a tensor cannot be named '{}'", path, name);
    const Tensor t = tensor.contiguous();
    const StoredType type = stored_type(t.dtype());
    const uint64_t bytes = uint64_t(t.numel()) * type.bytes;
    header += fmt::format("{}{}: {{\"dtype\": \"{}\", \"shape\": [{}], \"data_offsets\": [{}, {}]}}",
                          header.size() > 1 ? ", " : "", JsonObject::quote(name), type.name,
                          fmt::join(t.shape(), ", "), offset, offset + bytes);
    offset += bytes;
    data.push_back(t);
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');  // the data starts 8-byte aligned

  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) fail("safetensors {}: cannot create {} (does the folder exist and is it writable?)", path, temp);
    uint8_t length[8];
    for (int i = 0; i < 8; ++i) length[i] = uint8_t(uint64_t(header.size()) >> (8 * i));
    out.write(reinterpret_cast<const char*>(length), 8);
    out.write(header.data(), std::streamsize(header.size()));
    for (const Tensor& t : data)
      out.write(static_cast<const char*>(t.raw_data()), std::streamsize(uint64_t(t.numel()) * stored_type(t.dtype()).bytes));
    out.flush();
    if (!out) {
      out.close();
      std::remove(temp.c_str());
      fail("safetensors {}: writing failed{}", path, data::h5::disk_full_note(path));
    }
  }
  move_into_place(temp, path, "safetensors " + path);
}

SafetensorsFile read_safetensors(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail("safetensors {}: no such file", path);
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) fail("safetensors {}: cannot read its size: {}", path, ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("safetensors {}: cannot open it", path);
  uint8_t length[8];
  if (file_size < 8 || !in.read(reinterpret_cast<char*>(length), 8))
    fail("safetensors {}: {} bytes, too short for the 8-byte header length; not a safetensors file", path, file_size);
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | length[i];
  if (header_size > kMaxHeaderBytes || header_size > file_size - 8)
    fail("safetensors {}: the header says it is {} bytes long, but the file has {} bytes after the length{}; not a "
         "safetensors file, or a truncated one", path, header_size, file_size - 8,
         header_size > kMaxHeaderBytes ? " (and the format allows at most 100 MB)" : "");
  std::string header(header_size, '\0');
  if (!in.read(header.data(), std::streamsize(header_size))) fail("safetensors {}: cannot read its header", path);
  const uint64_t data_size = file_size - 8 - header_size;

  const JsonValue root = JsonValue::parse(header, "safetensors " + path + " (header)");
  SafetensorsFile out;
  struct Entry {
    std::string name;
    DType dtype;
    size_t stored_bytes;
    std::string stored_name;
    Shape shape;
    uint64_t begin, end;
  };
  std::vector<Entry> entries;
  for (const auto& [name, value] : root.as_object("safetensors " + path + ": the header")) {
    const std::string where = fmt::format("safetensors {}: '{}'", path, name);
    if (name == "__metadata__") {
      for (const auto& [k, v] : value.as_object(where)) out.metadata[k] = v.as_string(where + "." + k);
      continue;
    }
    Entry e{name, DType::f32, 0, "", {}, 0, 0};
    const JsonValue* dtype = value.find("dtype");
    const JsonValue* shape = value.find("shape");
    const JsonValue* offsets = value.find("data_offsets");
    if (!value.is_object() || !dtype || !shape || !offsets)
      fail("{} should be an object with dtype, shape and data_offsets", where);
    e.stored_name = dtype->as_string(where + ".dtype");
    if (!read_type(e.stored_name, e.dtype, e.stored_bytes))
      fail("{} has dtype {}, which Tessera does not read (F32, F64, BF16, F16, I32, I64, U8, BOOL)", where, e.stored_name);
    // The element count, checked for overflow before anything is sized by it.
    uint64_t count = 1;
    for (const JsonValue& d : shape->as_array(where + ".shape")) {
      const int64_t side = d.as_integer(where + ".shape[]", 0, std::numeric_limits<int64_t>::max());
      if (side != 0 && count > data_size / uint64_t(side)) count = data_size + 1;  // more than the file can hold
      else count *= uint64_t(side);
      e.shape.push_back(side);
    }
    const auto& range = offsets->as_array(where + ".data_offsets");
    if (range.size() != 2) fail("{}.data_offsets should be [begin, end]", where);
    e.begin = uint64_t(range[0].as_integer(where + ".data_offsets[0]", 0, int64_t(data_size)));
    e.end = uint64_t(range[1].as_integer(where + ".data_offsets[1]", 0, int64_t(data_size)));
    if (e.end < e.begin || count > data_size || e.end - e.begin != count * e.stored_bytes)
      fail("{}: shape {} of {} needs {} bytes but data_offsets [{}, {}] hold {} (the file's data is {} bytes)", where,
           shape_to_string(e.shape), e.stored_name, count > data_size ? std::string("more than the file's") :
           std::to_string(count * e.stored_bytes), e.begin, e.end, int64_t(e.end) - int64_t(e.begin), data_size);
    entries.push_back(std::move(e));
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < entries.size(); ++i)
    if (entries[i].begin < entries[i - 1].end)
      fail("safetensors {}: the data of '{}' and '{}' overlap", path, entries[i - 1].name, entries[i].name);

  std::vector<char> raw;
  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    const uint64_t bytes = e.end - e.begin;
    char* target = static_cast<char*>(t.raw_data());
    if (e.stored_bytes == 2) raw.resize(bytes), target = raw.data();
    in.seekg(std::streamoff(8 + header_size + e.begin));
    if (bytes > 0 && !in.read(target, std::streamsize(bytes))) fail("safetensors {}: cannot read the data of '{}'", path, e.name);
    if (e.stored_bytes == 2) {  // BF16 / F16, widened exactly
      float* f = t.data<float>();
      for (uint64_t i = 0; i < bytes / 2; ++i) {
        uint16_t h;
        std::memcpy(&h, raw.data() + 2 * i, 2);
        f[i] = e.stored_name == "BF16" ? kernels::from_bf16(h) : half_to_float(h);
      }
    }
    out.dtypes[e.name] = e.stored_name;
    out.tensors.emplace_back(e.name, std::move(t));
  }
  return out;
}

}  // namespace tessera::train
