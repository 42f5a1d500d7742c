#pragma once
// Each cmd_*.cpp defines one factory returning its subcommand; commands.cpp lists them all
// (explicitly: static-initialisation registration would be dropped by the static-library link).
// `add` declares the CLI11 subcommand and binds its options to state captured in the closures;
// `run` runs it after parsing and returns the exit code.
#include <functional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace prunekv::cli {

struct Command {
  std::string name;
  std::function<void(CLI::App&)> add;
  std::function<int()> run;
};

// The factories, one per cmd_*.cpp.
std::vector<Command> all_commands();
Command generate_command();
Command merge_command();
Command eval_command();
Command bench_command();
Command batched_bench_command();
Command simulate_command();
Command serve_command();
Command bench_serve_command();

}  // namespace prunekv::cli
