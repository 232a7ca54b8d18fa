#pragma once
// A flat byte string for state that processes hand each other (a sharded evaluation's generated
// texts, boxes, embeddings): numbers, texts and lists of them, read back in the order written,
// by the same build on the same kind of machine.
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "autograd/error.h"

namespace tessera::train {

class ByteWriter {
 public:
  template <class T>
  void number(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    out_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  template <class T>
  void numbers(const std::vector<T>& v) {
    number(uint64_t(v.size()));
    out_.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
  }
  void text(const std::string& s) {
    number(uint64_t(s.size()));
    out_ += s;
  }
  void texts(const std::vector<std::string>& v) {
    number(uint64_t(v.size()));
    for (const std::string& s : v) text(s);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class ByteReader {
 public:
  explicit ByteReader(const std::string& in) : in_(in) {}
  template <class T>
  T number() {
    T v;
    std::memcpy(&v, take(sizeof v), sizeof v);
    return v;
  }
  template <class T>
  std::vector<T> numbers() {
    const auto n = size_t(number<uint64_t>());
    if (n > (in_.size() - at_) / sizeof(T)) fail("a process's state ends early (a list of {} values)", n);
    std::vector<T> v(n);
    if (n > 0) std::memcpy(v.data(), take(n * sizeof(T)), n * sizeof(T));
    return v;
  }
  std::string text() {
    const auto n = size_t(number<uint64_t>());
    return std::string(take(n), n);
  }
  std::vector<std::string> texts() {
    const auto n = size_t(number<uint64_t>());
    std::vector<std::string> v;
    for (size_t i = 0; i < n; ++i) v.push_back(text());
    return v;
  }
  bool done() const { return at_ == in_.size(); }

 private:
  const char* take(size_t n) {
    if (n > in_.size() - at_) fail("a process's state ends early ({} bytes wanted, {} left)", n, in_.size() - at_);
    const char* p = in_.data() + at_;
    at_ += n;
    return p;
  }
  const std::string& in_;
  size_t at_ = 0;
};

}  // namespace tessera::train
