#include "train/atomic_file.h"

#include <fstream>

#include "autograd/error.h"
#include "data/hdf5_util.h"

namespace tessera::train {

void write_text_atomically(const std::filesystem::path& path, const std::string& text) {
  const std::filesystem::path temp = path.string() + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) fail("cannot create {} (does the folder exist and is it writable?)", temp.string());
    out << text;
    out.flush();
    if (!out) {
      out.close();
      std::filesystem::remove(temp);
      fail("cannot write {}{}", temp.string(), data::h5::disk_full_note(path.string()));
    }
  }
  std::error_code error;
  std::filesystem::rename(temp, path, error);
  if (error) {
    std::filesystem::remove(temp);
    fail("cannot move {} into place: {}", path.string(), error.message());
  }
}

}  // namespace tessera::train
