// Serves two token prompts on a synthetic model through the installed offline API and checks
// that each gets exactly the tokens it asked for; then runs the same model through the installed
// simulator (prunekv::sim) and batched-bench (prunekv::bench). Exit code 0 = the package works.
#include <cstdio>
#include <vector>

#include "bench/batched_bench.h"
#include "model/model.h"
#include "scheduler/engine.h"
#include "scheduler/transformer_runner.h"
#include "sim/device_profile.h"
#include "sim/simulation.h"

int main() {
  const auto model = prunekv::load_model("synthetic:stories260K");
  prunekv::TransformerRunner runner(*model, 1);

  prunekv::EngineConfig config;
  config.num_kv_blocks = 1024;
  config.default_policy = "dbudget";

  std::vector<prunekv::RequestSpec> specs(2);
  specs[0].prompt_tokens = {1, 10, 20, 30, 40, 50};
  specs[1].prompt_tokens = {1, 7, 8, 9};
  for (auto& spec : specs) {
    spec.max_tokens = 5;
    spec.ignore_eos = true;
  }
  const std::vector<prunekv::RequestOutput> outputs = prunekv::generate(runner, config, specs);

  if (outputs.size() != specs.size()) {
    std::fprintf(stderr, "consumer: expected %zu outputs, got %zu\n", specs.size(), outputs.size());
    return 1;
  }
  for (const auto& out : outputs) {
    if (out.output_tokens.size() != 5 || !out.finished()) {
      std::fprintf(stderr, "consumer: request %s: expected 5 tokens, got %zu (%s)\n", out.id.c_str(),
                   out.output_tokens.size(), out.error.c_str());
      return 1;
    }
  }
  std::printf("consumer: %zu requests served, 5 tokens each\n", outputs.size());

  prunekv::sim::SimulationConfig sim;
  sim.model = model->config;
  sim.device = prunekv::sim::device_profile("H100");
  sim.kv_memory_bytes = 64ull << 20;
  const std::vector<prunekv::sim::SimulatedRequest> trace(4, {0.0, 32, 8});
  const prunekv::sim::SimulationResult simulated = prunekv::sim::run_simulation(sim, trace, "full");
  if (simulated.num_finished != trace.size() || simulated.blocks_used_after != 0) {
    std::fprintf(stderr, "consumer: simulation finished %zu of %zu requests, %zu blocks left\n",
                 simulated.num_finished, trace.size(), simulated.blocks_used_after);
    return 1;
  }
  std::printf("consumer: %zu requests simulated\n", simulated.num_finished);

  prunekv::bench::BatchedBench bench(*model, {});
  const prunekv::bench::BatchedBenchResult measured = bench.run({8, 4, 2});
  if (measured.t_pp <= 0 || measured.t_tg <= 0) {
    std::fprintf(stderr, "consumer: batched-bench measured no time\n");
    return 1;
  }
  std::fputs(prunekv::bench::batched_bench_md_row(measured).c_str(), stdout);
  return 0;
}
