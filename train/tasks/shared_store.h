#pragma once
// Task::store_part and merge_store_parts for a task whose whole-set metrics (type M, with a
// `std::shared_ptr<S> store` member) share one store S that can write itself to bytes and append
// another process's part (write(ByteWriter&), append(ByteReader&)).
#include <memory>
#include <string>
#include <vector>

#include "train/byte_stream.h"
#include "train/task.h"

namespace tessera::train {

template <class M, class S>
std::string store_part_of(const std::vector<std::unique_ptr<Metric>>& metrics) {
  const S* store = nullptr;
  for (const auto& m : metrics)
    if (auto* shared = dynamic_cast<const M*>(m.get()); shared && shared->store) store = shared->store.get();
  ByteWriter w;
  w.number(uint8_t(store != nullptr));  // a process that evaluated no batch kept nothing
  if (store) store->write(w);
  return w.take();
}

template <class M, class S>
void merge_store_parts_of(std::vector<std::unique_ptr<Metric>>& metrics, const std::vector<std::string>& parts) {
  auto merged = std::make_shared<S>();
  for (const std::string& part : parts) {
    ByteReader r(part);
    if (r.number<uint8_t>()) merged->append(r);
  }
  for (auto& m : metrics)
    if (auto* shared = dynamic_cast<M*>(m.get())) shared->store = merged;
}

}  // namespace tessera::train
