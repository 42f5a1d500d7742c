#include "bench/fidelity_eval.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/build_info.h"
#include "common/error.h"
#include "common/log.h"
#include "common/stopwatch.h"
#include "scheduler/engine.h"
#include "policies/pruning_policy.h"
#include "scheduler/jsonl.h"

namespace prunekv::bench {

std::vector<RequestSpec> fidelity_eval_requests(const FidelityEvalOptions& args) {
  RequestDefaults defaults;
  defaults.max_tokens = args.max_tokens != 0 ? args.max_tokens : 256;
  std::vector<RequestSpec> specs = read_all_requests(args.input, defaults, args.read);
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

std::vector<EvalPolicySpec> eval_policy_specs(const FidelityEvalOptions& options) {
  std::vector<EvalPolicySpec> out;
  for (const std::string& spec : options.policies) {
    for (uint32_t every : options.prune_every) {
      if (every == 0 || make_pruning_policy(spec)->prunes_generated()) out.push_back({spec, "", 0.0, every});
    }
  }
  if (!options.sweep_families.empty() && options.sweep_ratios.empty())
    throw ConfigError("--sweep: expected ratios to sweep (--ratios), found none");
  for (const std::string& family : options.sweep_families) {
    for (double ratio : options.sweep_ratios) {
      const std::string spec = fmt::format("{}:{:g}", family, ratio);
      try {
        make_pruning_policy(spec);
      } catch (const ConfigError& e) {
        throw ConfigError(fmt::format("--sweep {} at ratio {:g}: expected a fixed-budget family (snapkv, h2o, "
                                      "streaming, pyramidkv, knorm) and a ratio in (0, 1]: {}",
                                      family, ratio, e.what()));
      }
      out.push_back({spec, family, ratio});
    }
  }
  return out;
}

std::vector<EvalPolicyResult> run_fidelity_eval(const FidelityEvalOptions& args, TransformerRunner& runner,
                                                const std::vector<RequestSpec>& specs) {
  auto log = log::get("bench");
  EngineConfig config = args.engine;
  const std::vector<EvalPolicySpec> policies = eval_policy_specs(args);

  // The reference: every request with the full cache, its next-token distributions recorded.
  config.default_policy = "full";
  Stopwatch clock;
  std::vector<RequestSpec> recorded = specs;
  for (RequestSpec& spec : recorded) spec.record_logprobs = true;
  const std::vector<RequestOutput> full = generate(runner, config, recorded);
  std::vector<bool> usable(specs.size(), true);
  for (size_t i = 0; i < full.size(); ++i) {
    if (full[i].finished()) continue;
    usable[i] = false;
    log->warn("eval: request {} left out: the full-cache run failed: {}", full[i].id, full[i].error);
  }
  log->info("eval: full cache reference done in {:.2f} s", clock.seconds());

  // Teacher forcing: each request is fed the full cache's output tokens.
  std::vector<RequestSpec> forced = recorded;
  for (size_t i = 0; i < forced.size(); ++i) forced[i].forced_tokens = full[i].output_tokens;

  std::vector<EvalPolicyResult> results;
  for (const EvalPolicySpec& policy : policies) {
    clock.reset();
    config.default_policy = policy.spec;
    config.prune_every = policy.prune_every;
    std::vector<RequestSpec> free_running = specs;
    for (RequestSpec& spec : free_running) spec.record_kv_blocks = true;
    const std::vector<RequestOutput> outputs = generate(runner, config, std::move(free_running));
    const std::vector<RequestOutput> forced_outputs = generate(runner, config, forced);
    EvalPolicyResult result;
    result.policy = policy.prune_every == 0 ? policy.spec : fmt::format("{} every {}", policy.spec, policy.prune_every);
    result.prune_every = policy.prune_every;
    result.family = policy.family;
    result.ratio = policy.ratio;
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (!usable[i]) continue;
      const RequestOutput* failed = !outputs[i].finished() ? &outputs[i] : !forced_outputs[i].finished() ? &forced_outputs[i] : nullptr;
      if (failed != nullptr) {
        log->warn("eval: request {} under {} failed: {}", failed->id, policy.spec, failed->error);
        continue;
      }
      result.requests.push_back(compare_with_full(full[i], outputs[i]));
      add_teacher_forced(result.requests.back(), full[i], forced_outputs[i]);
    }
    log->info("eval: {}: {}/{} exact, TF agreement {:.4f}, mean KL {:.2e}, kept {:.3f}, {} + {} blocks freed ({:.2f} s)",
              result.policy, result.num_exact(), result.requests.size(), result.mean_tf_agreement(),
              result.mean_tf_kl(), result.mean_kv_kept_fraction(), result.blocks_freed(),
              result.generated_blocks_freed(), clock.seconds());
    results.push_back(std::move(result));
  }

  return results;
}

}  // namespace prunekv::bench
