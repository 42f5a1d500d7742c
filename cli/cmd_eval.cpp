// `prunekv eval`: pruned-vs-full fidelity. Every request runs greedily with the full cache and
// with each policy; the report says, per policy and per request, how far the outputs agree and
// how much KV the policy kept.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "cli/command_registry.h"
#include "cli/engine_options.h"
#include "cli/eval_report.h"
#include "cli/jsonl.h"
#include "common/byte_size.h"
#include "common/error.h"
#include "common/log.h"
#include "common/stopwatch.h"
#include "scheduler/engine.h"
#include "scheduler/transformer_runner.h"

namespace prunekv::cli {
namespace {

inline constexpr const char* kDefaultEvalPolicies =
    "full,dbudget,dbudget:exact,streaming:0.7,h2o:0.9,snapkv:0.7,pyramidkv:0.7,knorm:0.7";

struct EvalArgs {
  EngineOptions engine;
  std::string input;
  uint32_t max_tokens = 0;  // 0 = each line's own (or 256)
  std::string output_json;
};

// Reads the requests, greedy, each with its own max_tokens (capped by --max-tokens); a bad line
// is fatal here: a fidelity figure over a silently shortened set would mislead.
std::vector<RequestSpec> read_eval_requests(const EvalArgs& args) {
  RequestDefaults defaults;
  defaults.max_tokens = args.max_tokens != 0 ? args.max_tokens : 256;
  std::vector<RequestSpec> specs = read_all_requests(args.input, defaults);
  for (auto& spec : specs) {
    spec.sampling = SamplingParams{};  // greedy: temperature 0
    if (args.max_tokens != 0) spec.max_tokens = std::min(spec.max_tokens, args.max_tokens);
  }
  return specs;
}

int run_eval(const EvalArgs& args) {
  auto log = log::get("cli");
  EngineConfig config = args.engine.engine_config();
  const std::vector<std::string> policies = args.engine.policy_list();
  const std::vector<RequestSpec> specs = read_eval_requests(args);

  const auto model = load_model_for(args.engine);
  TransformerRunner runner(*model, args.engine.num_threads());
  const KvLayout layout = runner.kv_layout(config.block_size);
  std::printf(
      "prunekv eval: build %s, %d threads, model %s (%s), KV pool %zu blocks x %u tokens, %zu requests, "
      "greedy\n\n",
      build_type(), config.num_threads, model->config.name.c_str(), model->file_type.c_str(),
      config.resolve_num_blocks(layout), config.block_size, specs.size());

  // The reference: every request with the full cache.
  config.default_policy = "full";
  Stopwatch clock;
  const std::vector<RequestOutput> full = generate(runner, config, specs);
  std::vector<bool> usable(specs.size(), true);
  for (size_t i = 0; i < full.size(); ++i) {
    if (full[i].finished()) continue;
    usable[i] = false;
    log->warn("eval: request {} left out: the full-cache run failed: {}", full[i].id, full[i].error);
  }
  log->info("eval: full cache reference done in {:.2f} s", clock.seconds());

  std::vector<EvalPolicyResult> results;
  for (const auto& policy : policies) {
    clock.reset();
    config.default_policy = policy;
    const std::vector<RequestOutput> outputs = generate(runner, config, specs);
    EvalPolicyResult result;
    result.policy = policy;
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (!usable[i]) continue;
      if (!outputs[i].finished()) {
        log->warn("eval: request {} under {} failed: {}", outputs[i].id, policy, outputs[i].error);
        continue;
      }
      result.requests.push_back(compare_with_full(full[i], outputs[i]));
    }
    log->info("eval: {}: {}/{} exact, kept {:.3f} ({:.2f} s)", policy, result.num_exact(),
              result.requests.size(), result.mean_kv_kept_fraction(), clock.seconds());
    results.push_back(std::move(result));
  }

  std::fputs(eval_table(results).c_str(), stdout);
  std::fflush(stdout);
  if (!args.output_json.empty()) {
    std::ofstream out(args.output_json);
    if (!out) throw InputError(fmt::format("--output-json: cannot create \"{}\"", args.output_json));
    out << eval_json(results).dump(2) << '\n';
  }
  return 0;
}

}  // namespace

Command eval_command() {
  auto args = std::make_shared<EvalArgs>();
  args->engine.policy = kDefaultEvalPolicies;
  return Command{
      "eval",
      [args](CLI::App& app) {
        auto* cmd = app.add_subcommand(
            "eval", "greedy agreement of pruned KV caches with the full cache, per request");
        add_engine_options(
            *cmd, args->engine,
            EngineOptionSet{.policy = false, .policy_list = true, .admission = true, .seed = false});
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
      },
      [args] { return run_eval(*args); }};
}

}  // namespace prunekv::cli
