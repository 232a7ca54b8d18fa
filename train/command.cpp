#include "train/command.h"

#include <fmt/format.h>

#include <algorithm>
#include <exception>

#include "autograd/error.h"
#include "train/experiment.h"

namespace tessera::cli {
namespace {

std::vector<Command>& registry() {
  static std::vector<Command> list;
  return list;
}

void print_help() {
  fmt::print(
      "tessera — train and evaluate image tokenizers\n\n"
      "usage: tessera <command> [options]\n\ncommands:\n");
  std::vector<Command> sorted = registry();
  std::sort(sorted.begin(), sorted.end(), [](const Command& a, const Command& b) { return a.name < b.name; });
  for (const Command& c : sorted) fmt::print("  {:<10} {}\n", c.name, c.summary);
  fmt::print("\n'tessera <command> --help' describes one command.\n");
}

}  // namespace

CommandRegistration::CommandRegistration(Command command) { registry().push_back(std::move(command)); }


int run_main(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_help();
    return args.empty() ? 2 : 0;
  }
  const auto it = std::find_if(registry().begin(), registry().end(), [&](const Command& c) { return c.name == args[0]; });
  if (it == registry().end()) {
    fmt::print(stderr, "tessera: unknown command '{}' (see 'tessera --help')\n", args[0]);
    return 2;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (!rest.empty() && (rest[0] == "--help" || rest[0] == "-h")) {
    fmt::print("{}\n", it->usage.empty() ? it->summary : it->usage);
    return 0;
  }
  try {
    train::check_thread_environment();
    return it->run(rest);
  } catch (const std::exception& e) {
    fmt::print(stderr, "tessera {}: error: {}\n", it->name, e.what());
    return 1;
  }
}

}  // namespace tessera::cli
