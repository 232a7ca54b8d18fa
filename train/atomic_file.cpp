#include "train/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>

#include "autograd/error.h"
#include "data/hdf5_util.h"

namespace tessera::train {

namespace {
// Makes sure the bytes are on disk before a rename makes them the file.
void sync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}
}  // namespace

void move_into_place(const std::string& temp, const std::string& path, const std::string& what) {
  sync_path(temp);
  std::error_code error;
  std::filesystem::rename(temp, path, error);
  if (error) {
    std::filesystem::remove(temp, error);
    fail("{}: cannot move the finished file into place: {}", what, error.message());
  }
  const std::filesystem::path target(path);
  sync_path(target.has_parent_path() ? target.parent_path().string() : ".");
}

void write_text_atomically(const std::filesystem::path& path, const std::string& text) {
  const std::string temp = path.string() + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) fail("cannot create {} (does the folder exist and is it writable?)", temp);
    out << text;
    out.flush();
    if (!out) {
      out.close();
      std::filesystem::remove(temp);
      fail("cannot write {}{}", temp, data::h5::disk_full_note(path.string()));
    }
  }
  move_into_place(temp, path.string(), path.string());
}

}  // namespace tessera::train
