#include "data/output_folder.h"

#include "autograd/error.h"

namespace tessera::data {

OutputFolder::OutputFolder(const std::string& path, const std::string& what) {
  std::error_code ec;
  const bool existed = std::filesystem::exists(path, ec);
  std::filesystem::create_directories(path, ec);
  if (ec) fail("{}: cannot create output folder '{}': {}", what, path, ec.message());
  if (!existed) made_ = path;
}

OutputFolder::~OutputFolder() {
  std::error_code ec;
  if (!made_.empty() && std::filesystem::is_empty(made_, ec)) std::filesystem::remove(made_, ec);
}

}  // namespace tessera::data
