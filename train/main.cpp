#include <string>
#include <vector>

#include "train/command.h"

int main(int argc, char** argv) {
  return tessera::cli::run_main(std::vector<std::string>(argv + 1, argv + argc));
}
