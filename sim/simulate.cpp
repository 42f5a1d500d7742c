#include "sim/simulate.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/byte_size.h"
#include "common/error.h"
#include "common/log.h"
#include "common/output_file.h"
#include "common/svg_plot.h"
#include "common/text.h"
#include "model/model_shape.h"
#include "scheduler/engine_config.h"
#include "sim/cost_model.h"
#include "sim/cpu_calibration.h"
#include "sim/simulated_policy.h"
#include "sim/workload.h"

namespace prunekv::sim {
namespace {

std::vector<std::string> split_policies(const std::string& text) {
  std::vector<std::string> out;
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t end = std::min(text.find(',', begin), text.size());
    if (end == begin) throw ConfigError(fmt::format("--policy: expected comma-separated policy specs, found \"{}\"", text));
    out.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return out;
}

// The paper profile that goes with a named shape; Llama-3-8B's for anything else.
std::string default_kept_fraction(const std::string& model_name) {
  if (model_name == "Mistral-7B") return "paper:mistral-7b";
  if (model_name == "Qwen2.5-7B") return "paper:qwen2.5-7b";
  return "paper:llama3-8b";
}

// A bare existing file is read as `prunekv eval --output-json` output.
std::string kept_fraction_spec(const std::string& text) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(text, ec)) return "eval:" + text;
  return text;
}

std::string ratio(double value, double base) { return base > 0 ? fmt::format("{:.2f}x", value / base) : "-"; }

std::string summary_table(const std::vector<SimulationResult>& results) {
  struct Row {
    const char* name;
    double (*get)(const SimulationResult&);
    const char* format;
  };
  static const Row rows[] = {
      {"requests/s", [](const SimulationResult& r) { return r.requests_per_second; }, "{:.3f}"},
      {"output tokens/s", [](const SimulationResult& r) { return r.output_tokens_per_second; }, "{:.1f}"},
      {"total tokens/s", [](const SimulationResult& r) { return r.tokens_per_second; }, "{:.1f}"},
      {"elapsed (s)", [](const SimulationResult& r) { return r.elapsed_time; }, "{:.2f}"},
      {"TTFT p50 (ms)", [](const SimulationResult& r) { return r.ttft.p50 * 1e3; }, "{:.1f}"},
      {"TTFT p90 (ms)", [](const SimulationResult& r) { return r.ttft.p90 * 1e3; }, "{:.1f}"},
      {"TTFT p99 (ms)", [](const SimulationResult& r) { return r.ttft.p99 * 1e3; }, "{:.1f}"},
      {"TPOT p50 (ms)", [](const SimulationResult& r) { return r.tpot.p50 * 1e3; }, "{:.2f}"},
      {"TPOT p90 (ms)", [](const SimulationResult& r) { return r.tpot.p90 * 1e3; }, "{:.2f}"},
      {"TPOT p99 (ms)", [](const SimulationResult& r) { return r.tpot.p99 * 1e3; }, "{:.2f}"},
      {"peak KV blocks used", [](const SimulationResult& r) { return double(r.peak_kv_blocks_used); }, "{:.0f}"},
      {"mean KV blocks used", [](const SimulationResult& r) { return r.mean_kv_blocks_used; }, "{:.0f}"},
      {"max concurrency", [](const SimulationResult& r) { return double(r.max_concurrency); }, "{:.0f}"},
      {"mean concurrency", [](const SimulationResult& r) { return r.mean_concurrency; }, "{:.1f}"},
      {"preemptions", [](const SimulationResult& r) { return double(r.num_preemptions); }, "{:.0f}"},
      {"blocks freed by pruning", [](const SimulationResult& r) { return double(r.blocks_freed_by_pruning); }, "{:.0f}"},
      {"mean kept KV fraction", [](const SimulationResult& r) { return r.mean_kv_kept_fraction; }, "{:.4f}"},
      {"requests finished", [](const SimulationResult& r) { return double(r.num_finished); }, "{:.0f}"},
      {"requests failed", [](const SimulationResult& r) { return double(r.num_failed); }, "{:.0f}"},
  };
  std::string out = fmt::format("{:<26}", "metric");
  for (size_t i = 0; i < results.size(); ++i) {
    out += fmt::format("{:>16}", results[i].policy);
    if (i > 0) out += fmt::format("{:>9}", "ratio");
  }
  out += "\n";
  for (const Row& row : rows) {
    out += fmt::format("{:<26}", row.name);
    const double base = row.get(results.front());
    for (size_t i = 0; i < results.size(); ++i) {
      const double v = row.get(results[i]);
      out += fmt::format("{:>16}", fmt::format(fmt::runtime(row.format), v));
      if (i > 0) out += fmt::format("{:>9}", ratio(v, base));
    }
    out += "\n";
  }
  return out;
}

void write_json(const std::string& path, const std::vector<SimulationResult>& results) {
  nlohmann::json array = nlohmann::json::array();
  for (const auto& r : results) {
    array.push_back({{"policy", r.policy},
                     {"elapsed_time", r.elapsed_time},
                     {"num_requests", r.num_requests},
                     {"num_finished", r.num_finished},
                     {"num_failed", r.num_failed},
                     {"total_num_tokens", r.total_num_tokens()},
                     {"num_output_tokens", r.num_output_tokens},
                     {"requests_per_second", r.requests_per_second},
                     {"tokens_per_second", r.tokens_per_second},
                     {"output_tokens_per_second", r.output_tokens_per_second},
                     {"peak_kv_blocks_used", r.peak_kv_blocks_used},
                     {"mean_kv_blocks_used", r.mean_kv_blocks_used},
                     {"kv_blocks_total", r.kv_blocks_total},
                     {"kv_block_bytes", r.kv_block_bytes},
                     {"max_concurrency", r.max_concurrency},
                     {"mean_concurrency", r.mean_concurrency},
                     {"num_preemptions", r.num_preemptions},
                     {"blocks_freed_by_pruning", r.blocks_freed_by_pruning},
                     {"mean_kv_kept_fraction", r.mean_kv_kept_fraction},
                     {"mean_ttft_ms", r.ttft.mean * 1e3},
                     {"p50_ttft_ms", r.ttft.p50 * 1e3},
                     {"p90_ttft_ms", r.ttft.p90 * 1e3},
                     {"p99_ttft_ms", r.ttft.p99 * 1e3},
                     {"mean_tpot_ms", r.tpot.mean * 1e3},
                     {"p50_tpot_ms", r.tpot.p50 * 1e3},
                     {"p90_tpot_ms", r.tpot.p90 * 1e3},
                     {"p99_tpot_ms", r.tpot.p99 * 1e3},
                     {"num_steps", r.num_steps}});
  }
  write_output_file(path, "--output-json", array.dump(2) + "\n");
}

void write_timeline(const std::string& path, const std::vector<SimulationResult>& results) {
  std::string out =
      "policy,step,time,duration,num_running,num_waiting,num_scheduled,num_prefill_tokens,num_decode_tokens,"
      "num_admitted,num_finished,num_preemptions,num_pruned,blocks_freed_by_pruning,blocks_used,blocks_free,"
      "peak_blocks_used,num_waiting_arrived\n";
  for (const auto& r : results)
    for (size_t i = 0; i < r.timeline.size(); ++i) {
      const StepStats& s = r.timeline[i];
      out += fmt::format("{},{},{:.6f},{:.6f},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", r.policy, s.step, s.time,
                         s.duration, s.num_running, s.num_waiting, s.num_scheduled, s.num_prefill_tokens,
                         s.num_decode_tokens, s.num_admitted, s.num_finished, s.num_preemptions, s.num_pruned,
                         s.blocks_freed_by_pruning, s.blocks_used, s.blocks_free, s.peak_blocks_used,
                         r.timeline_waiting_arrived[i]);
    }
  write_output_file(path, "--timeline", out);
}

void write_plot(const std::string& path, const std::vector<SimulationResult>& results, const std::string& title) {
  std::vector<PlotPanel> panels = {{"KV blocks used (% of pool)", "% of pool", {}},
                                   {"Running requests", "requests", {}},
                                   {"Waiting requests (arrived, not yet running)", "requests", {}}};
  for (const auto& r : results) {
    PlotSeries used{r.policy, {}, {}}, running{r.policy, {}, {}}, waiting{r.policy, {}, {}};
    for (size_t i = 0; i < r.timeline.size(); ++i) {
      const StepStats& s = r.timeline[i];
      // blocks_used is after the step's frees; peak_blocks_used is the transient high point.
      used.x.push_back(s.time);
      used.y.push_back(100.0 * double(std::max(s.blocks_used, s.peak_blocks_used)) / double(r.kv_blocks_total));
      running.x.push_back(s.time);
      running.y.push_back(double(s.num_running));
      waiting.x.push_back(s.time);
      waiting.y.push_back(double(r.timeline_waiting_arrived[i]));
    }
    panels[0].series.push_back(std::move(used));
    panels[1].series.push_back(std::move(running));
    panels[2].series.push_back(std::move(waiting));
  }
  write_svg_plot(path, panels, {title, "simulated time (s)", 900, 220});
}

// `cpu` times this engine running the simulated model itself when it can be built here (a
// synthetic shape or a model file); a named large shape is calibrated on synthetic:stories15M.
DeviceProfile simulation_device(const SimulateOptions& o) {
  if (to_lower_ascii(o.device) != "cpu") return device_profile(o.device);
  std::error_code ec;
  std::string spec = o.model_shape;
  if (!spec.starts_with("synthetic:") && !std::filesystem::is_regular_file(spec, ec)) {
    spec = "synthetic:stories15M";
    log::get("sim")->warn("cpu: {} is too large to run here; calibrating on {} instead", o.model_shape, spec);
  }
  return calibrate_cpu_for_model(*load_model(spec), o.threads).profile;
}

}  // namespace

SimulateRun simulate(const SimulateOptions& o) {
  auto log = log::get("sim");
  SimulationConfig config;
  config.model = model_shape(o.model_shape);
  config.kv_dtype = parse_kv_dtype(o.kv_dtype);
  config.kv_memory_bytes = parse_kv_memory(o.kv_memory);
  config.block_size = o.block_size;
  config.max_num_seqs = o.max_num_seqs;
  config.max_num_batched_tokens = o.max_num_batched_tokens;
  config.admission = parse_admission_mode(o.admission);
  config.kept_fraction = o.kept_fraction.empty() ? default_kept_fraction(config.model.name) : kept_fraction_spec(o.kept_fraction);
  KeptFractionDistribution::parse(config.kept_fraction);  // fail early on a bad spec
  config.seed = o.seed;
  config.record_timeline = !o.timeline.empty() || !o.plot.empty();
  const std::vector<std::string> policies = split_policies(o.policy);
  for (const auto& p : policies) simulated_policy_spec(p, 1.0);  // fail early on a bad policy

  std::vector<SimulatedRequest> requests =
      o.trace.empty() ? generate_workload({o.num_requests, o.arrival, o.prompt_len, o.output_len, o.seed}) : read_trace(o.trace);
  // Each request's prompt is allocated in full when it is submitted: one that cannot fit the
  // context is refused here, before anything that size is allocated.
  for (size_t i = 0; i < requests.size(); ++i)
    if (uint64_t(requests[i].prompt_len) + requests[i].output_len - 1 > config.model.context_length)
      throw ConfigError(fmt::format("request {}: prompt_len {} + output_len {} needs more than {}'s context of {} "
                                    "tokens: shorten --prompt-len / --output-len or the trace",
                                    i, requests[i].prompt_len, requests[i].output_len, config.model.name,
                                    config.model.context_length));

  config.device = simulation_device(o);  // `cpu` loads and times a model: after the cheap checks
  const CostModel cost(config.model, config.device, config.kv_dtype);
  const uint64_t weight_bytes = uint64_t(cost.weight_bytes_total());
  log->info("model {}: {} layers, dim {}, {} heads / {} KV heads, head dim {}, weights {} at {} bytes/param",
            config.model.name, config.model.num_layers, config.model.dim, config.model.num_heads,
            config.model.num_kv_heads, config.model.head_dim(), format_bytes(weight_bytes),
            config.device.weight_bytes_per_param);
  log->info("device {}: {:.1f} TFLOP/s, {:.1f} GB/s, {} memory, {:.2f} ms per step overhead", config.device.name,
            config.device.peak_flops / 1e12, config.device.memory_bandwidth / 1e9, format_bytes(config.device.memory_bytes),
            config.device.step_overhead_s * 1e3);
  if (weight_bytes + config.kv_memory_bytes > config.device.memory_bytes)
    log->warn("weights ({}) + KV pool ({}) exceed the device's {}", format_bytes(weight_bytes),
              format_bytes(config.kv_memory_bytes), format_bytes(config.device.memory_bytes));
  log->info("workload: {} requests ({}), kept fraction {}", requests.size(),
            o.trace.empty() ? fmt::format("arrival {}, prompt {}, output {}", o.arrival, o.prompt_len, o.output_len)
                            : "trace " + o.trace,
            config.kept_fraction);

  std::vector<SimulationResult> results;
  for (const auto& policy : policies) {
    results.push_back(run_simulation(config, requests, policy));
    const auto& r = results.back();
    log->info("{}: {} steps simulated in {:.2f} s of host time", policy, r.num_steps, r.wall_seconds);
    if (r.blocks_used_after != 0) log->error("{}: {} blocks still in use after the run", policy, r.blocks_used_after);
  }
  return {config, requests.size(), std::move(results)};
}

std::string simulate_summary(const SimulateRun& run) {
  const SimulationConfig& config = run.config;
  const std::vector<SimulationResult>& results = run.results;
  return fmt::format("\nprunekv simulate: {} on {} ({} KV pool, {} blocks of {} tokens x {} bytes), {} requests\n\n",
                     config.model.name, config.device.name, format_bytes(config.kv_memory_bytes),
                     results.front().kv_blocks_total, config.block_size, results.front().kv_block_bytes,
                     run.num_requests) +
         summary_table(results);
}

void write_simulate_outputs(const SimulateOptions& o, const SimulateRun& run) {
  const SimulationConfig& config = run.config;
  if (!o.output_json.empty()) write_json(o.output_json, run.results);
  if (!o.timeline.empty()) write_timeline(o.timeline, run.results);
  if (!o.plot.empty())
    write_plot(o.plot, run.results,
               fmt::format("{} on {}, {} KV pool, {} requests", config.model.name, config.device.name,
                           format_bytes(config.kv_memory_bytes), run.num_requests));
}

}  // namespace prunekv::sim
