#include "cli/commands.h"

#include <CLI/CLI.hpp>

#include "cli/command_registry.h"

namespace prunekv::cli {
namespace {
std::vector<Command>& registered() {
  static std::vector<Command> commands = all_commands();
  return commands;
}
}  // namespace

std::vector<Command> all_commands() {
  std::vector<Command> commands;
  // Subcommand factories are appended here as they land, e.g. commands.push_back(generate_command());
  return commands;
}

void register_commands(CLI::App& app) {
  for (auto& command : registered()) command.add(app);
}

int run_selected(CLI::App& app) {
  for (auto* sub : app.get_subcommands())
    for (auto& command : registered())
      if (command.name == sub->get_name()) return command.run();
  return 0;
}

}  // namespace prunekv::cli
