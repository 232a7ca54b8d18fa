#include <string>
#include <vector>

#include "data/hdf5_util.h"
#include "train/command.h"

int main(int argc, char** argv) {
  tessera::data::h5::skip_library_teardown_at_exit();
  return tessera::cli::run_main(std::vector<std::string>(argv + 1, argv + argc));
}
