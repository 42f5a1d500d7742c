// prunekv: the command-line front end. Logs go to stderr, results to stdout; bad input is
// reported as a clear error and a non-zero exit, never a crash.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "common/error.h"
#include "common/log.h"

int main(int argc, char** argv) {
  CLI::App app{"prunekv: a CPU LLM serving engine with budget-free KV cache pruning on one shared block pool"};
  app.set_version_flag("--version", std::string("prunekv ") + PRUNEKV_VERSION);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")->capture_default_str();
  app.require_subcommand(0, 1);
  prunekv::cli::register_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    prunekv::log::set_level(log_level);
    if (app.get_subcommands().empty()) {
      std::fputs(app.help().c_str(), stdout);
      return 0;
    }
    return prunekv::cli::run_selected(app);
  } catch (const prunekv::Error& e) {
    prunekv::log::get("cli")->error("{}", e.what());
    return 1;
  } catch (const std::exception& e) {
    prunekv::log::get("cli")->error("unexpected error: {}", e.what());
    return 2;
  }
}
