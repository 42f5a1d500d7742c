#pragma once
// cli/: the `prunekv` executable: flag parsing and calls into sim/, bench/ and scheduler/, one
// small cmd_*.cpp per subcommand; no logic a library could hold.
//
// Subcommand registry for the prunekv executable. Each command lives in its own cmd_*.cpp and
// registers itself here; CLI11 stays out of every other header.
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace prunekv::cli {

// Adds every subcommand (generate, eval, bench, batched-bench, simulate, serve, bench-serve) to `app`.
void register_commands(CLI::App& app);
// Runs the parsed subcommand; returns the process exit code.
int run_selected(CLI::App& app);

// `generate`'s exit code when some requests failed (each has an error record) and the rest were
// served and written.
inline constexpr int kExitSomeRequestsFailed = 3;

// The whole command line (args[0] is the program name): parses, runs the subcommand, and turns
// bad input into a logged error. Returns the exit code: 0 ok, 1 bad input or flags (Error), or
// output that could not be written (stdout included), 2 anything unexpected,
// kExitSomeRequestsFailed; CLI11's own codes for parse errors (--help prints and returns 0).
int run_cli(std::vector<std::string> args);

}  // namespace prunekv::cli
