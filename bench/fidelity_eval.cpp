#include "bench/fidelity_eval.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/build_info.h"
#include "common/log.h"
#include "common/stopwatch.h"
#include "scheduler/engine.h"
#include "scheduler/jsonl.h"

namespace prunekv::bench {

std::vector<RequestSpec> fidelity_eval_requests(const FidelityEvalOptions& args) {
  RequestDefaults defaults;
  defaults.max_tokens = args.max_tokens != 0 ? args.max_tokens : 256;
  std::vector<RequestSpec> specs = read_all_requests(args.input, defaults);
  for (auto& spec : specs) {
    spec.sampling = SamplingParams{};  // greedy: temperature 0
    if (args.max_tokens != 0) spec.max_tokens = std::min(spec.max_tokens, args.max_tokens);
  }
  return specs;
}


std::string fidelity_eval_header(const FidelityEvalOptions& options, const Model& model,
                                 const TransformerRunner& runner, size_t num_requests) {
  const EngineConfig& config = options.engine;
  return fmt::format(
      "prunekv eval: build {}, {} threads, model {} ({}), KV pool {} blocks x {} tokens, {} requests, greedy\n\n",
      build_type(), config.num_threads, model.config.name, model.file_type,
      config.resolve_num_blocks(runner.kv_layout(config.block_size)), config.block_size, num_requests);
}

std::vector<EvalPolicyResult> run_fidelity_eval(const FidelityEvalOptions& args, TransformerRunner& runner,
                                                const std::vector<RequestSpec>& specs) {
  auto log = log::get("bench");
  EngineConfig config = args.engine;
  const std::vector<std::string>& policies = args.policies;

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

  return results;
}

}  // namespace prunekv::bench
