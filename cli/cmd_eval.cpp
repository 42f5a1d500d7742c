// `prunekv eval`: pruned-vs-full fidelity (bench/fidelity_eval.h). The flags, then the run and
// its reports.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench/fidelity_eval.h"
#include "cli/command_registry.h"
#include "cli/engine_options.h"
#include "common/error.h"
#include "common/output_file.h"
#include "common/svg_plot.h"

namespace prunekv::cli {
namespace {

struct EvalArgs {
  EngineOptions engine;
  std::string input;
  uint32_t max_tokens = 0;  // 0 = each line's own (or 256)
  std::string output_json;
  std::vector<std::string> sweep;
  std::vector<double> ratios{std::begin(bench::kDefaultSweepRatios), std::end(bench::kDefaultSweepRatios)};
  std::string plot;
  std::string blocks_plot;
  std::vector<uint32_t> prune_every{0};
  ReadOptions read;
};

int run_eval(const EvalArgs& args) {
  bench::FidelityEvalOptions options;
  options.engine = args.engine.engine_config();
  options.policies = args.engine.policy_list();
  options.input = args.input;
  options.read = args.read;
  options.max_tokens = args.max_tokens;
  options.sweep_families = args.sweep;
  options.sweep_ratios = args.ratios;
  options.prune_every = args.prune_every;
  bench::eval_policy_specs(options);  // a bad --sweep fails before the model loads
  const std::vector<RequestSpec> specs = bench::fidelity_eval_requests(options);

  const auto model = load_model_for(args.engine);
  TransformerRunner runner(*model, args.engine.num_threads());
  std::fputs(bench::fidelity_eval_header(options, *model, runner, specs.size()).c_str(), stdout);

  const std::vector<bench::EvalPolicyResult> results = bench::run_fidelity_eval(options, runner, specs);
  std::fputs(bench::eval_table(results).c_str(), stdout);
  std::fflush(stdout);
  if (!args.output_json.empty()) write_output_file(args.output_json, "--output-json", bench::eval_json(results).dump(2) + '\n');
  if (!args.plot.empty()) {
    PlotOptions plot;
    plot.title = fmt::format("prunekv eval: fidelity against prompt blocks freed, {} on {} requests", model->config.name,
                             specs.size());
    plot.x_label = "prompt blocks freed (%)";
    write_svg_plot(args.plot, bench::frontier_plot_panels(results), plot);
  }
  if (!args.blocks_plot.empty()) {
    PlotOptions plot;
    plot.title = fmt::format("prunekv eval: KV blocks held per request over its generation, {} on {} requests",
                             model->config.name, specs.size());
    plot.x_label = "output tokens generated";
    write_svg_plot(args.blocks_plot, bench::blocks_held_plot_panels(results), plot);
  }
  return 0;
}

}  // namespace

Command eval_command() {
  auto args = std::make_shared<EvalArgs>();
  args->engine.policy = bench::kDefaultEvalPolicies;
  return Command{
      "eval",
      [args](CLI::App& app) {
        auto* cmd = app.add_subcommand(
            "eval", "greedy and teacher-forced agreement of pruned KV caches with the full cache, per request");
        add_engine_options(
            *cmd, args->engine,
            EngineOptionSet{.policy = false, .policy_list = true, .admission = true, .seed = false, .prune_every = false});
        add_input_options(*cmd, args->read);
        cmd->add_option("--policies,--policy", args->engine.policy,
                        "pruning policies to compare with the full cache, comma-separated")
            ->capture_default_str();
        add_policy_help_flag(*cmd);
        cmd->add_option("--input,-i", args->input, "JSONL requests (the golden file works as is)")
            ->required();
        cmd->add_option("--max-tokens", args->max_tokens,
                        "cap on every request's max_tokens (default: each line's own, else 256)");
        cmd->add_option("--output-json", args->output_json,
                        "write the per-policy and per-request report here");
        cmd->add_option("--sweep", args->sweep,
                        "fixed-budget families to run at every --ratios value after --policies, e.g. snapkv,h2o,streaming")
            ->delimiter(',');
        cmd->add_option("--ratios", args->ratios, "kept ratios R of the --sweep, comma-separated")
            ->delimiter(',')
            ->capture_default_str();
        cmd->add_option("--plot", args->plot,
                        "SVG of exact and teacher-forced agreement against prompt blocks freed (the frontier)");
        cmd->add_option("--prune-every", args->prune_every,
                        "decode steps between prunes of generated tokens, comma-separated: each policy that "
                        "prunes during decode (topp, topp-blk, dbudget-l1) runs once per value; 0 = after the "
                        "prefill only")
            ->delimiter(',')
            ->capture_default_str();
        cmd->add_option("--blocks-plot", args->blocks_plot,
                        "SVG of the KV blocks held per request against output tokens generated, one line per run");
      },
      [args] { return run_eval(*args); }};
}

}  // namespace prunekv::cli
