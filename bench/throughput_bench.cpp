#include "bench/throughput_bench.h"

#include <fmt/format.h>

#include <algorithm>
#include <random>

#include "bench/eval_report.h"
#include "common/build_info.h"
#include "common/byte_size.h"
#include "common/error.h"
#include "common/log.h"
#include "common/stopwatch.h"
#include "model/quant_matmul.h"
#include "scheduler/engine.h"
#include "scheduler/jsonl.h"

namespace prunekv::bench {
namespace {

// Evenly spaced indices, at most n of them.
std::vector<size_t> sample_indices(size_t total, size_t n) {
  std::vector<size_t> indices;
  n = std::min(n, total);
  for (size_t k = 0; k < n; ++k) indices.push_back(k * total / n);
  return indices;
}

// Seeded random prompts (vLLM's random dataset): BOS, then input_len - 1 ids drawn uniformly
// from the vocabulary minus the stop tokens.
std::vector<RequestSpec> random_requests(const ThroughputBenchOptions& args, const Model& model) {
  std::mt19937_64 rng(args.seed);
  std::uniform_int_distribution<TokenId> draw(0, static_cast<TokenId>(model.config.vocab_size) - 1);
  const auto is_stop = [&](TokenId t) {
    return std::find(model.stop_tokens.begin(), model.stop_tokens.end(), t) != model.stop_tokens.end();
  };
  std::vector<RequestSpec> specs(args.num_prompts);
  for (size_t i = 0; i < specs.size(); ++i) {
    RequestSpec& spec = specs[i];
    spec.id = std::to_string(i);
    spec.prompt_tokens.push_back(model.bos_id);
    while (spec.prompt_tokens.size() < args.input_len) {
      const TokenId t = draw(rng);
      if (!is_stop(t)) spec.prompt_tokens.push_back(t);
    }
    spec.max_tokens = args.output_len;
  }
  return specs;
}

std::vector<RequestSpec> file_requests(const ThroughputBenchOptions& args) {
  RequestDefaults defaults;
  defaults.max_tokens = args.output_len != 0 ? args.output_len : 256;
  std::vector<RequestSpec> specs = read_all_requests(args.input, defaults, args.read);
  if (args.output_len != 0)
    for (auto& spec : specs) spec.max_tokens = args.output_len;
  return specs;
}

// Fixed work, whatever the model emits, at the bench's temperature and seed; a bad temperature
// is refused before anything runs, as generate refuses it.
void fix_work(std::vector<RequestSpec>& specs, const ThroughputBenchOptions& args) {
  SamplingParams sampling;
  sampling.temperature = args.temperature;
  sampling.seed = args.seed;
  sampling.validate();
  for (auto& spec : specs) {
    spec.ignore_eos = true;
    spec.sampling = sampling;
  }
}

}  // namespace

std::vector<RequestSpec> throughput_bench_file_requests(const ThroughputBenchOptions& args) {
  std::vector<RequestSpec> specs = file_requests(args);
  fix_work(specs, args);
  return specs;
}

std::vector<RequestSpec> throughput_bench_requests(const ThroughputBenchOptions& args, const Model& model) {
  const bool synthetic = args.num_prompts != 0 || args.input_len != 0;
  if (args.input.empty() == !synthetic ||
      (synthetic && (args.num_prompts == 0 || args.input_len == 0 || args.output_len == 0)))
    throw ConfigError(
        fmt::format("bench: expected either --input FILE or all of --num-prompts, --input-len, --output-len; "
                    "found --input \"{}\", "
                    "--num-prompts {}, --input-len {}, --output-len {}",
                    args.input, args.num_prompts, args.input_len, args.output_len));
  if (!synthetic) return throughput_bench_file_requests(args);
  std::vector<RequestSpec> specs = random_requests(args, model);
  fix_work(specs, args);
  return specs;
}

std::string throughput_bench_header(const ThroughputBenchOptions& args, const Model& model,
                                    const TransformerRunner& runner, size_t num_requests) {
  const EngineConfig& config = args.engine;
  const KvLayout layout = runner.kv_layout(config.block_size);
  const size_t num_blocks = config.resolve_num_blocks(layout);
  std::string out = fmt::format("prunekv bench: build {}, {} threads, model {} ({}, {:.2f}M params, context {})\n",
                                build_type(), config.num_threads, model.config.name, model.file_type,
                                double(model.config.num_weight_params()) / 1e6, model.config.context_length);
  out += fmt::format("Weights: {}; quantized kernels {}\n", model.weight_summary(), quant_kernel_isa());
  out += fmt::format("KV pool: {} blocks x {} tokens x {} = {}; max_num_seqs {}, max_num_batched_tokens {}, admission {}\n",
                     num_blocks, config.block_size, format_bytes(layout.bytes_per_block()),
                     format_bytes(uint64_t(num_blocks) * layout.bytes_per_block()), config.max_num_seqs,
                     config.max_num_batched_tokens, to_string(config.admission));
  if (args.input.empty())
    out += fmt::format("Requests: {} random prompts (seed {}), {} prompt + {} output tokens each, ignore_eos\n\n",
                       num_requests, args.seed, args.input_len, args.output_len);
  else
    out += fmt::format("Requests: {} from {}, ignore_eos{}\n\n", num_requests, args.input,
                       args.output_len ? fmt::format(", {} output tokens each", args.output_len) : "");
  return out;
}

std::vector<BenchResult> run_throughput_bench(const ThroughputBenchOptions& args, TransformerRunner& runner,
                                              const std::vector<RequestSpec>& specs) {
  auto log = log::get("bench");
  EngineConfig config = args.engine;
  const std::vector<std::string>& policies = args.policies;
  const size_t num_blocks = config.resolve_num_blocks(runner.kv_layout(config.block_size));

  if (args.warmup) {
    // Touches the weights and the kernels' scratch once, so the first policy is not penalised.
    RequestSpec warm = specs.front();
    warm.max_tokens = 4;
    EngineConfig warm_config = config;
    warm_config.default_policy = "full";
    generate(runner, warm_config, {warm});
  }

  std::vector<RequestOutput> reference;  // full cache on the verify sample
  const std::vector<size_t> verify_indices =
      sample_indices(specs.size(), args.verify ? args.verify_samples : 0);
  if (args.verify) {
    std::vector<RequestSpec> sample;
    for (size_t i : verify_indices) sample.push_back(specs[i]);
    EngineConfig full_config = config;
    full_config.default_policy = "full";
    reference = generate(runner, full_config, sample);
  }

  config.commit_kv_memory = true;  // the timed engines only
  const auto run_policy = [&](const std::string& policy) {
    config.default_policy = policy;
    std::vector<StepStats> timeline;
    config.step_observer = [&timeline](const StepStats& step) { timeline.push_back(step); };
    // Engine start-up (the pool committed) is not timed, as in vLLM's throughput benchmark.
    Engine engine(runner, config);
    Stopwatch clock;
    const std::vector<RequestOutput> outputs = generate(engine, specs);
    const double elapsed = clock.seconds();
    BenchResult result = summarize_bench(policy, elapsed, outputs, engine.stats(), num_blocks, std::move(timeline));
    if (result.num_failed != 0) {
      const auto failed =
          std::find_if(outputs.begin(), outputs.end(), [](const auto& o) { return !o.finished(); });
      const std::string what = fmt::format("bench: {}: {} of {} requests failed, first: {}: {}", policy,
                                           result.num_failed, result.num_requests, failed->id, failed->error);
      // Nothing served is no throughput at all, not a figure of zero.
      if (result.num_failed == result.num_requests) throw InputError(what);
      log->warn("{}", what);
    }
    if (args.verify) {
      VerifyResult verify;
      double prefix_sum = 0.0;
      for (size_t k = 0; k < verify_indices.size(); ++k) {
        if (!reference[k].finished() || !outputs[verify_indices[k]].finished()) continue;
        const EvalRequestResult cmp = compare_with_full(reference[k], outputs[verify_indices[k]]);
        ++verify.num_requests;
        verify.num_exact += cmp.exact ? 1 : 0;
        prefix_sum += cmp.prefix_fraction;
      }
      verify.mean_prefix_fraction = verify.num_requests ? prefix_sum / double(verify.num_requests) : 0.0;
      result.verify = verify;
    }
    return result;
  };

  // Repetitions take the policies in turn (full, dbudget, full, dbudget, ...), so a slow spell
  // of a noisy machine lands on every policy alike; each policy's figures come from its
  // median-time run.
  std::vector<std::vector<BenchResult>> runs(policies.size());
  for (size_t rep = 0; rep < args.repetitions; ++rep) {
    for (size_t p = 0; p < policies.size(); ++p) {
      runs[p].push_back(run_policy(policies[p]));
      if (args.repetitions > 1 && args.on_run)
        args.on_run(fmt::format("run {}/{} {}: {:.3f} s", rep + 1, args.repetitions, policies[p],
                                runs[p].back().elapsed_time));
    }
  }
  std::vector<BenchResult> results;
  for (auto& policy_runs : runs) {
    if (const std::string why = runs_disagreement(policy_runs); !why.empty()) log->warn("bench: {}", why);
    results.push_back(median_run(std::move(policy_runs)));
  }
  return results;
}

}  // namespace prunekv::bench
