#pragma once
// Subcommand registry for the prunekv executable. Each command lives in its own cmd_*.cpp and
// registers itself here; CLI11 stays out of every other header.
namespace CLI {
class App;
}

namespace prunekv::cli {

// Adds every subcommand (generate, eval, bench, batched-bench, simulate) to `app`.
void register_commands(CLI::App& app);
// Runs the parsed subcommand; returns the process exit code.
int run_selected(CLI::App& app);

}  // namespace prunekv::cli
