#pragma once
// The output folder of an import (`--out DIR`): made when missing, and removed again if the import
// fails while the folder is still empty, so that a refused import leaves nothing behind. A folder
// that existed before is never removed.
#include <filesystem>
#include <string>

namespace tessera::data {

class OutputFolder {
 public:
  // Creates `path` (and its parents) when missing; throws naming `what` ("scenes") and the folder.
  OutputFolder(const std::string& path, const std::string& what);
  ~OutputFolder();
  OutputFolder(const OutputFolder&) = delete;
  OutputFolder& operator=(const OutputFolder&) = delete;
  // The import succeeded: the folder stays.
  void keep() { made_.clear(); }

 private:
  std::filesystem::path made_;  // the folder this object created, until kept
};

}  // namespace tessera::data
