#include "cli/commands.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "cli/command_registry.h"
#include "common/build_info.h"
#include "common/error.h"
#include "common/output_file.h"
#include "common/log.h"

namespace prunekv::cli {
namespace {
// Unsigned flags refuse a minus sign: CLI11 would read --max-num-seqs -1 as 2^64 - 1.
void refuse_negative_unsigned(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
    for (CLI::Option* option : sub->get_options())
      if (option->get_type_name() == "UINT")
        option->check(CLI::Validator(
            [](std::string& value) -> std::string {
              return value.starts_with('-') ? "expected a number >= 0, found " + value : "";
            },
            "", "non-negative"));
}

std::vector<Command>& registered() {
  static std::vector<Command> commands = all_commands();
  return commands;
}
}  // namespace

std::vector<Command> all_commands() {
  std::vector<Command> commands;
  // Subcommand factories are appended here as they land, e.g. commands.push_back(generate_command());
  commands.push_back(generate_command());
  commands.push_back(merge_command());
  commands.push_back(eval_command());
  commands.push_back(bench_command());
  commands.push_back(batched_bench_command());
  commands.push_back(simulate_command());
  commands.push_back(serve_command());
  commands.push_back(bench_serve_command());
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

int run_cli(std::vector<std::string> args) {
  // llama.cpp spells some long flags with one dash (-npp, -ntg, -npl); CLI11 reserves one dash
  // for one-letter names, so they are accepted here as their two-dash forms.
  for (auto& arg : args)
    if (arg == "-npp" || arg == "-ntg" || arg == "-npl") arg = "-" + arg;
  std::vector<const char*> argv;
  for (const auto& arg : args) argv.push_back(arg.c_str());

  CLI::App app{
      "prunekv: a CPU LLM serving engine with budget-free KV cache pruning on one shared block pool"};
  app.set_version_flag("--version", std::string("prunekv ") + prunekv_version());
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
      ->capture_default_str();
  app.require_subcommand(0, 1);
  // Fresh command state per call, so repeated in-process runs (tests) never see old values.
  std::vector<Command> commands = all_commands();
  for (auto& command : commands) command.add(app);
  refuse_negative_unsigned(app);
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    log::set_level(log_level);
    if (app.get_subcommands().empty()) {
      std::fputs(app.help().c_str(), stdout);
      return 0;
    }
    int code = 0;
    for (auto* sub : app.get_subcommands())
      for (auto& command : commands)
        if (command.name == sub->get_name()) code = command.run();
    check_stdout();  // results printed to a full disk are lost results
    return code;
  } catch (const Error& e) {
    log::get("cli")->error("{}", e.what());
    return 1;
  } catch (const std::exception& e) {
    log::get("cli")->error("unexpected error: {}", e.what());
    return 2;
  }
}

}  // namespace prunekv::cli
