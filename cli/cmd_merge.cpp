// `prunekv merge`: the results of a sharded `generate` back into one file in input order, after
// checking that every line was served exactly once by shards of this very input
// (scheduler/shard_merge.h).
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "cli/command_registry.h"
#include "common/log.h"
#include "scheduler/shard_merge.h"

namespace prunekv::cli {
namespace {

struct MergeArgs {
  std::string input;
  std::string shards;
  std::string output = "-";
};

int run_merge(const MergeArgs& args) {
  const MergeSummary summary = merge_shards(args.input, args.shards, args.output);
  log::get("cli")->info("merge: {} lines from {} shards ({} ok, {} errors) to {}", summary.num_lines,
                        summary.num_shards, summary.num_ok, summary.num_error, args.output);
  return 0;
}

}  // namespace

Command merge_command() {
  auto args = std::make_shared<MergeArgs>();
  return Command{
      "merge",
      [args](CLI::App& app) {
        auto* cmd = app.add_subcommand(
            "merge", "check the shards of a sharded generate against the input and join them in input order");
        cmd->add_option("--input,-i", args->input, "the batch file the shards served")->required();
        cmd->add_option("--shards", args->shards, "the shards' --output, with {shard} (e.g. 'out-{shard}.jsonl')")
            ->required();
        cmd->add_option("--output,-o", args->output, "merged results, or - for stdout")->capture_default_str();
      },
      [args] { return run_merge(*args); }};
}

}  // namespace prunekv::cli
