// `prunekv generate`: offline batch serving. JSONL requests in (prunekv's or OpenAI's Batch
// format), one record per input line out, in input order; a bad line gets an error record and
// every other line is still served. Sharded, it serves its share of the lines and writes a
// manifest for `prunekv merge` (scheduler/shard_run.h).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/command_registry.h"
#include "cli/commands.h"
#include "cli/engine_options.h"
#include "cli/progress.h"
#include "common/check.h"
#include "common/error.h"
#include "common/log.h"
#include "common/stopwatch.h"
#include "scheduler/batch_file.h"
#include "scheduler/engine.h"
#include "scheduler/shard_run.h"
#include "scheduler/transformer_runner.h"

namespace prunekv::cli {
namespace {

struct GenerateArgs {
  EngineOptions engine;
  std::string input;
  std::string output = "-";
  uint32_t max_tokens = 256;
  float temperature = 0.0f;
  float top_p = 1.0f;
  int32_t top_k = 0;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  bool quiet = false;
  std::optional<uint32_t> num_shards;
  std::optional<uint32_t> shard_index;
  bool resume = false;
  ReadOptions read;
};

// Writes records as soon as every earlier line has one, so output streams in input order.
class OrderedRecords {
 public:
  OrderedRecords(JsonlWriter& writer, size_t n) : writer_(writer), records_(n) {}
  void set(size_t index, nlohmann::ordered_json record) { records_[index] = std::move(record); }
  void write_ready() {
    bool wrote = false;
    while (next_ < records_.size() && !records_[next_].is_null()) {
      writer_.write(records_[next_]);
      records_[next_] = nlohmann::ordered_json();  // free it; next_ moves past
      ++next_;
      wrote = true;
    }
    if (wrote) writer_.flush();
  }
  bool all_written() const { return next_ == records_.size(); }

 private:
  JsonlWriter& writer_;
  std::vector<nlohmann::ordered_json> records_;
  size_t next_ = 0;
};

int run_generate(const GenerateArgs& args) {
  auto log = log::get("cli");
  const EngineConfig base_config = args.engine.engine_config();

  RequestDefaults defaults;
  defaults.max_tokens = args.max_tokens;
  defaults.sampling.temperature = args.temperature;
  defaults.sampling.top_p = args.top_p;
  defaults.sampling.top_k = args.top_k;
  defaults.sampling.seed = args.engine.seed;
  defaults.sampling.validate();
  defaults.stop = args.stop;
  defaults.ignore_eos = args.ignore_eos;
  BatchInput input = read_batch_file(args.input, defaults, args.read);
  std::vector<ParsedLine>& lines = input.lines;
  if (lines.empty())
    throw InputError(fmt::format("--input {}: expected at least one request, found none", args.input));
  const auto shard = select_shard(args.num_shards, args.shard_index, process_env);
  ShardRun run({args.input, args.output, shard, args.resume}, input);
  const std::vector<size_t>& pending = run.pending();
  if (shard)
    log->info("shard {} of {} (from {}): {} of {} lines, {} to serve, results to {}", shard->shard_index,
              shard->num_shards, shard->source, run.num_owned(), lines.size(), pending.size(), run.output_path());
  const std::string model_name = std::filesystem::path(args.engine.model).filename().string();

  const auto model = load_model_for(args.engine);
  // A tokenizer the file names but prunekv cannot run fails every text request alike: say so once.
  if (!model->unusable_tokenizer.empty())
    for (const ParsedLine& line : lines)
      if (line.spec && line.spec->prompt_tokens.empty())
        throw InputError(fmt::format("line {}: a text prompt needs the model's tokenizer, and {}: pass prompt_tokens "
                                     "or a --tokenizer",
                                     line.line_number, model->unusable_tokenizer));
  TransformerRunner runner(*model, args.engine.num_threads());
  log->info("generate: {} requests, {} worker threads", pending.size(), args.engine.num_threads());

  // A resumable run (sharded, or resumed) keeps each record under the final name as it is written,
  // so a crash loses nothing a --resume cannot pick up; a plain run writes a temporary file and
  // renames it into place at the end.
  JsonlWriter writer(run.output_path(), run.appends() ? OutputFile::Mode::kAppend
                                        : shard         ? OutputFile::Mode::kInPlace
                                                        : OutputFile::Mode::kReplace);
  OrderedRecords records(writer, pending.size());
  ProgressReporter progress(pending.size(), !args.quiet);
  ProgressSnapshot snapshot;
  size_t num_prompt_tokens = 0, num_failed = 0;

  EngineConfig config = base_config;
  config.step_observer = [&](const StepStats& step) {
    snapshot.blocks_used = step.blocks_used;
    snapshot.num_running = step.num_running;
    snapshot.num_waiting = step.num_waiting;
    progress.update(snapshot);
  };
  Engine engine(runner, config);
  snapshot.blocks_total = engine.pool().num_total_blocks();

  Stopwatch clock;
  // `k` counts this run's lines: records come out in input order of the lines it serves.
  for (size_t k = 0; k < pending.size(); ++k) {
    ParsedLine& line = lines[pending[k]];
    if (!line.spec) {
      log->warn("{}", line.error);
      records.set(k, batch_error_record(input.format, line.id, line.error));
      run.count_record(false);
      ++snapshot.num_done;
      ++num_failed;
      continue;
    }
    const std::string policy = line.spec->policy.empty() ? config.default_policy : line.spec->policy;
    // The callback runs on this thread inside step(); `k` keeps input order.
    engine.submit(std::move(*line.spec), [&, k, policy](const RequestOutput& output, bool finished) {
      if (!finished) {
        ++snapshot.num_output_tokens;
        return;
      }
      ++snapshot.num_done;
      if (output.finish_reason == FinishReason::kError) {
        ++num_failed;
        log->warn("request {}: {}", output.id, output.error);
      } else {
        num_prompt_tokens += output.num_prompt_tokens;  // served prompts only: a rejected one did no work
      }
      run.count_record(output.finished());
      records.set(k, batch_output_record(input.format, lines[pending[k]].id, output, model_name, policy));
    });
  }
  records.write_ready();
  while (engine.step()) records.write_ready();
  records.write_ready();
  progress.finish(snapshot);
  PKV_CHECK(records.all_written(), "generate: {} lines to serve, not every one got a record", pending.size());
  writer.commit();
  run.finish();

  const EngineStats& stats = engine.stats();
  const double elapsed = clock.seconds();
  const size_t num_output_tokens = stats.num_output_tokens;
  log->info(
      "generate: {} of {} requests failed; {} prompt tokens, {} output tokens in {:.2f} s: {:.1f} output "
      "tok/s, "
      "{:.1f} total tok/s; peak KV blocks {}/{}, {} preemptions, {} blocks freed by pruning ({} during decode)",
      num_failed, pending.size(), num_prompt_tokens, num_output_tokens, elapsed,
      static_cast<double>(num_output_tokens) / elapsed,
      static_cast<double>(num_prompt_tokens + num_output_tokens) / elapsed, stats.peak_blocks_used,
      engine.pool().num_total_blocks(), stats.num_preemptions, stats.blocks_freed_by_pruning,
      stats.blocks_freed_by_generated_pruning);
  return num_failed == 0 ? 0 : kExitSomeRequestsFailed;
}

}  // namespace

Command generate_command() {
  auto args = std::make_shared<GenerateArgs>();
  args->engine.policy = kDefaultServingPolicy;
  return Command{
      "generate",
      [args](CLI::App& app) {
        auto* cmd =
            app.add_subcommand("generate",
                               "serve a JSONL file of requests offline, results in input order; exits 0 when every "
                               "request was served, 3 when some failed (each has an error record), 1 on bad input");
        add_engine_options(*cmd, args->engine);
        add_input_options(*cmd, args->read);
        cmd->add_option("--input,-i", args->input, "JSONL requests, one per line, or - for stdin")
            ->required();
        cmd->add_option("--output,-o", args->output, "JSONL results, or - for stdout")->capture_default_str();
        cmd->add_option("--max-tokens", args->max_tokens, "tokens to generate for lines without max_tokens")
            ->capture_default_str()
            ->check(CLI::PositiveNumber);
        cmd->add_option("--temperature", args->temperature, "sampling temperature (0 = greedy)")
            ->capture_default_str();
        cmd->add_option("--top-p", args->top_p, "nucleus sampling mass")->capture_default_str();
        cmd->add_option("--top-k", args->top_k, "sample among the k most likely tokens (0 = all)")
            ->capture_default_str();
        cmd->add_option("--stop", args->stop, "stop string for lines without stop (repeatable)");
        cmd->add_flag("--ignore-eos", args->ignore_eos, "generate max_tokens whatever the model emits");
        cmd->add_flag("--quiet,-q", args->quiet, "no progress display");
        cmd->add_option("--num-shards", args->num_shards,
                        "serve a share of the lines: those whose index i has i mod N == --shard-index (default: "
                        "from the launcher's environment, if any)")
            ->check(CLI::PositiveNumber);
        cmd->add_option("--shard-index", args->shard_index, "this process's shard, 0 to N-1");
        cmd->add_flag("--resume", args->resume,
                      "keep the records already in --output and serve only the lines after them");
      },
      [args] { return run_generate(*args); }};
}

}  // namespace prunekv::cli
