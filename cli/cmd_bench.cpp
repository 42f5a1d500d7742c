// `prunekv bench`: end-to-end offline throughput in vLLM's shape. Every request is submitted at
// once and generates a fixed number of tokens (ignore_eos); each policy runs the same requests on
// a fresh engine, so the ratios between policies come from one invocation.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cli/bench_report.h"
#include "cli/command_registry.h"
#include "cli/engine_options.h"
#include "cli/eval_report.h"
#include "cli/jsonl.h"
#include "cli/svg_plot.h"
#include "common/byte_size.h"
#include "common/error.h"
#include "common/log.h"
#include "common/stopwatch.h"
#include "scheduler/engine.h"
#include "scheduler/transformer_runner.h"

namespace prunekv::cli {
namespace {

struct BenchArgs {
  EngineOptions engine;
  std::string input;
  size_t num_prompts = 0;
  uint32_t input_len = 0;
  uint32_t output_len = 0;  // with --input: overrides each line's max_tokens when set
  float temperature = 0.0f;
  std::string output_json;
  bool verify = false;
  size_t verify_samples = 8;
  std::string plot;
  bool no_warmup = false;
  size_t repetitions = 1;
};

// Seeded random prompts (vLLM's random dataset): BOS, then input_len - 1 ids drawn uniformly
// from the vocabulary minus the stop tokens.
std::vector<RequestSpec> random_requests(const BenchArgs& args, const Model& model) {
  std::mt19937_64 rng(args.engine.seed);
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

std::vector<RequestSpec> file_requests(const BenchArgs& args) {
  RequestDefaults defaults;
  defaults.max_tokens = args.output_len != 0 ? args.output_len : 256;
  std::vector<RequestSpec> specs = read_all_requests(args.input, defaults);
  if (args.output_len != 0)
    for (auto& spec : specs) spec.max_tokens = args.output_len;
  return specs;
}

std::vector<RequestSpec> bench_requests(const BenchArgs& args, const Model& model) {
  const bool synthetic = args.num_prompts != 0 || args.input_len != 0;
  if (args.input.empty() == !synthetic ||
      (synthetic && (args.num_prompts == 0 || args.input_len == 0 || args.output_len == 0)))
    throw ConfigError(
        fmt::format("bench: expected either --input FILE or all of --num-prompts, --input-len, --output-len; "
                    "found --input \"{}\", "
                    "--num-prompts {}, --input-len {}, --output-len {}",
                    args.input, args.num_prompts, args.input_len, args.output_len));
  std::vector<RequestSpec> specs = synthetic ? random_requests(args, model) : file_requests(args);
  for (auto& spec : specs) {
    spec.ignore_eos = true;  // fixed work, whatever the model emits
    spec.sampling = SamplingParams{};
    spec.sampling.temperature = args.temperature;
    spec.sampling.seed = args.engine.seed;
  }
  return specs;
}

// Evenly spaced indices, at most n of them.
std::vector<size_t> sample_indices(size_t total, size_t n) {
  std::vector<size_t> indices;
  n = std::min(n, total);
  for (size_t k = 0; k < n; ++k) indices.push_back(k * total / n);
  return indices;
}

int run_bench(const BenchArgs& args) {
  auto log = log::get("cli");
  EngineConfig config = args.engine.engine_config();
  const std::vector<std::string> policies = args.engine.policy_list();
  const auto model = load_model_for(args.engine);
  TransformerRunner runner(*model, args.engine.num_threads());
  const std::vector<RequestSpec> specs = bench_requests(args, *model);
  const KvLayout layout = runner.kv_layout(config.block_size);
  const size_t num_blocks = config.resolve_num_blocks(layout);

  // First lines: enough to reproduce any figure below.
  std::printf("prunekv bench: build %s, %d threads, model %s (%s, %.2fM params, context %u)\n", build_type(),
              config.num_threads, model->config.name.c_str(), model->file_type.c_str(),
              double(model->config.num_weight_params()) / 1e6, model->config.context_length);
  std::printf(
      "KV pool: %zu blocks x %u tokens x %s = %s; max_num_seqs %zu, max_num_batched_tokens %zu, admission "
      "%s\n",
      num_blocks, config.block_size, format_bytes(layout.bytes_per_block()).c_str(),
      format_bytes(uint64_t(num_blocks) * layout.bytes_per_block()).c_str(), config.max_num_seqs,
      config.max_num_batched_tokens, std::string(to_string(config.admission)).c_str());
  if (args.input.empty())
    std::printf("Requests: %zu random prompts (seed %llu), %u prompt + %u output tokens each, ignore_eos\n\n",
                specs.size(), static_cast<unsigned long long>(args.engine.seed), args.input_len,
                args.output_len);
  else
    std::printf("Requests: %zu from %s, ignore_eos%s\n\n", specs.size(), args.input.c_str(),
                args.output_len ? fmt::format(", {} output tokens each", args.output_len).c_str() : "");
  std::fflush(stdout);

  if (!args.no_warmup) {
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
      log->warn("bench: {}: {} requests failed, first: {}: {}", policy, result.num_failed, failed->id,
                failed->error);
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
      if (args.repetitions > 1) {
        std::printf("run %zu/%zu %s: %.3f s\n", rep + 1, args.repetitions, policies[p].c_str(),
                    runs[p].back().elapsed_time);
        std::fflush(stdout);
      }
    }
  }
  std::vector<BenchResult> results;
  for (auto& policy_runs : runs) {
    if (const std::string why = runs_disagreement(policy_runs); !why.empty()) log->warn("bench: {}", why);
    results.push_back(median_run(std::move(policy_runs)));
    std::printf("%s%s\n", args.repetitions > 1 ? "\n" : "", bench_text(results.back()).c_str());
    std::fflush(stdout);
  }
  if (results.size() > 1) std::printf("%s", bench_ratio_table(results).c_str());

  if (!args.output_json.empty()) {
    std::ofstream out(args.output_json);
    if (!out) throw InputError(fmt::format("--output-json: cannot create \"{}\"", args.output_json));
    out << bench_json(results).dump(2) << '\n';
  }
  if (!args.plot.empty()) {
    PlotOptions options;
    options.title = fmt::format("prunekv bench: {} on {}, {} blocks", model->config.name,
                                args.input.empty() ? "random prompts" : args.input, num_blocks);
    write_svg_plot(args.plot, bench_plot_panels(results), options);
  }
  return 0;
}

}  // namespace

Command bench_command() {
  auto args = std::make_shared<BenchArgs>();
  return Command{
      "bench",
      [args](CLI::App& app) {
        auto* cmd =
            app.add_subcommand("bench", "end-to-end offline throughput (vLLM's shape), one run per policy");
        add_engine_options(
            *cmd, args->engine,
            EngineOptionSet{.policy = true, .policy_list = true, .admission = true, .seed = true});
        auto* input =
            cmd->add_option("--input,-i", args->input, "JSONL requests (their prompts and max_tokens)");
        cmd->add_option("--num-prompts", args->num_prompts, "random prompts to generate")->excludes(input);
        cmd->add_option("--input-len", args->input_len, "prompt tokens per random prompt")->excludes(input);
        cmd->add_option("--output-len", args->output_len,
                        "tokens to generate per request (overrides max_tokens of --input)");
        cmd->add_option("--temperature", args->temperature, "sampling temperature (0 = greedy)")
            ->capture_default_str();
        cmd->add_option("--output-json", args->output_json,
                        "write one JSON object per policy (an array) here");
        cmd->add_flag("--verify", args->verify,
                      "rerun a sample with the full cache and report greedy agreement");
        cmd->add_option("--verify-samples", args->verify_samples, "requests in the --verify sample")
            ->capture_default_str();
        cmd->add_option("--plot", args->plot, "SVG of blocks in use, running and waiting requests over time");
        cmd->add_flag("--no-warmup", args->no_warmup, "skip the short warm-up run");
        cmd->add_option("--repetitions,-r", args->repetitions,
                        "runs of each policy, taken in turn; each policy's figures come from its median-time run")
            ->check(CLI::PositiveNumber)
            ->capture_default_str();
      },
      [args] { return run_bench(*args); }};
}

}  // namespace prunekv::cli
