#pragma once
// The `tessera` command's subcommands. Each lives in train/commands/<name>.cpp and registers
// itself with a static CommandRegistration, so adding one touches no other file.
#include <functional>
#include <string>
#include <vector>

namespace tessera::cli {

struct Command {
  std::string name;
  std::string summary;  // one line for `tessera --help`
  std::string usage;    // full help for `tessera NAME --help`
  std::function<int(const std::vector<std::string>& args)> run;
};

struct CommandRegistration {
  explicit CommandRegistration(Command command);
};

// Runs `tessera ARGS...`: dispatch, --help, and turning errors into a message and exit code.
int run_main(const std::vector<std::string>& args);

}  // namespace tessera::cli
