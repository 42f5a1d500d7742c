#include "bench/batched_bench.h"

#include <fmt/format.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "common/build_info.h"
#include "common/check.h"
#include "common/log.h"
#include "common/stopwatch.h"
#include "memory/block_pool.h"
#include "memory/sequence_kv.h"
#include "model/quant_matmul.h"
#include "model/step_batch.h"

namespace prunekv::bench {
namespace {

// One prefill token of the flat prompt stream: which sequence, which position.
struct PromptToken {
  size_t seq;
  Pos pos;
};

}  // namespace

BatchedBench::BatchedBench(const Model& model, const BatchedBenchOptions& options)
    : model_(model), options_(options), transformer_(model, options.num_threads) {}

BatchedBench::~BatchedBench() = default;

std::optional<std::string> BatchedBench::skip_reason(const BatchedBenchCase& c) const {
  if (c.pp == 0 || c.batch == 0) return fmt::format("PP = {}, B = {}: expected both >= 1", c.pp, c.batch);
  const uint32_t ctx = model_.config.context_length;
  if (c.pp + c.tg > ctx)
    return fmt::format("PP + TG = {} exceeds the model context of {} tokens", c.pp + c.tg, ctx);
  return std::nullopt;
}

BatchedBenchResult BatchedBench::run(const BatchedBenchCase& c) {
  PKV_CHECK(!skip_reason(c), "batched-bench case PP={} TG={} B={} cannot run", c.pp, c.tg, c.batch);
  const KvLayout layout = model_.config.kv_layout(options_.block_size, options_.kv_dtype);
  // Exactly what B sequences of pp + tg tokens need: every list of every sequence.
  BlockPool pool(layout, size_t{c.batch} * layout.num_lists() * layout.blocks_for_slots(c.pp + c.tg));
  pool.commit_memory();  // not timed: llama.cpp clears its KV buffer when the context is made
  std::vector<std::unique_ptr<SequenceKv>> seqs;
  for (uint32_t b = 0; b < c.batch; ++b) seqs.push_back(std::make_unique<SequenceKv>(pool));

  std::mt19937_64 rng(options_.seed);
  std::uniform_int_distribution<TokenId> draw(0, static_cast<TokenId>(model_.config.vocab_size) - 1);
  StepBatch batch;
  std::vector<float> logits;
  std::vector<TokenId> tokens;
  std::vector<Pos> positions;

  // Prefill: the B prompts back to back, cut into windows of n_batch tokens (a prompt may span
  // windows, as in llama.cpp); each window is one forward, sampling each prompt's last token.
  BatchedBenchResult result{c, 0.0, 0.0};
  const size_t total = size_t{c.batch} * c.pp;
  for (size_t begin = 0; begin < total; begin += options_.n_batch) {
    const size_t end = std::min(total, begin + options_.n_batch);
    std::vector<TokenId> window_tokens(end - begin);
    for (auto& t : window_tokens) t = draw(rng);
    Stopwatch clock;
    batch.clear();
    for (size_t i = begin; i < end;) {
      const size_t seq = i / c.pp;
      const Pos first = static_cast<Pos>(i % c.pp);
      const size_t n = std::min(end, (seq + 1) * size_t{c.pp}) - i;
      positions.resize(n);
      for (size_t k = 0; k < n; ++k) positions[k] = first + static_cast<Pos>(k);
      PKV_CHECK(seqs[seq]->append(positions), "batched-bench pool sized too small");
      const bool last_chunk = static_cast<uint32_t>(first) + n == c.pp;
      batch.add(seqs[seq].get(), std::span<const TokenId>(window_tokens).subspan(i - begin, n), first,
                last_chunk);
      i += n;
    }
    transformer_.forward(batch, logits);
    result.t_pp += clock.seconds();
  }

  // Decode: tg steps of one token per sequence, all sampling.
  tokens.resize(c.batch);
  for (uint32_t step = 0; step < c.tg; ++step) {
    for (auto& t : tokens) t = draw(rng);
    const Pos pos = static_cast<Pos>(c.pp + step);
    Stopwatch clock;
    batch.clear();
    for (uint32_t b = 0; b < c.batch; ++b) {
      PKV_CHECK(seqs[b]->append(std::span<const Pos>(&pos, 1)), "batched-bench pool sized too small");
      batch.add(seqs[b].get(), std::span<const TokenId>(&tokens[b], 1), pos, true);
    }
    transformer_.forward(batch, logits);
    result.t_tg += clock.seconds();
  }
  seqs.clear();  // blocks back to the pool before it goes
  return result;
}

void BatchedBench::warm_up() {
  const uint32_t pp = std::min<uint32_t>(16, model_.config.context_length / 2);
  run(BatchedBenchCase{pp, std::min<uint32_t>(4, model_.config.context_length - pp), 1});
}

std::vector<BatchedBenchCase> batched_bench_cases(const std::vector<uint32_t>& pp,
                                                  const std::vector<uint32_t>& tg,
                                                  const std::vector<uint32_t>& batch) {
  std::vector<BatchedBenchCase> cases;
  for (uint32_t p : pp)
    for (uint32_t t : tg)
      for (uint32_t b : batch) cases.push_back({p, t, b});
  return cases;
}

std::vector<BatchedBenchResult> run_batched_bench(
    BatchedBench& bench, const std::vector<BatchedBenchCase>& cases,
    const std::function<void(const BatchedBenchResult&)>& on_result) {
  auto log = log::get("bench");
  std::vector<BatchedBenchResult> results;
  bench.warm_up();
  for (const auto& c : cases) {
    if (const auto reason = bench.skip_reason(c)) {
      log->warn("batched-bench: skipped PP = {}, TG = {}, B = {}: {}", c.pp, c.tg, c.batch, *reason);
      continue;
    }
    results.push_back(bench.run(c));
    if (on_result) on_result(results.back());
  }
  return results;
}

std::string batched_bench_md_title(const Model& model, const BatchedBenchOptions& options) {
  return fmt::format(
      "prunekv batched-bench: build {}, model {} ({}, {:.2f}M params, context {}), n_batch = {}, n_threads = {}, "
      "block_size = {}, kv {}\nweights: {}; quantized kernels {}\n\n",
      build_type(), model.config.name, model.file_type, double(model.config.num_weight_params()) / 1e6,
      model.config.context_length, options.n_batch, options.num_threads, options.block_size,
      to_string(options.kv_dtype), model.weight_summary(), quant_kernel_isa());
}

std::string batched_bench_md_header() {
  return "|    PP |     TG |    B |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |      T s |    S t/s "
         "|\n"
         "|-------|--------|------|--------|----------|----------|----------|----------|----------|----------"
         "|\n";
}

std::string batched_bench_md_row(const BatchedBenchResult& r) {
  return fmt::format(
      "| {:5} | {:6} | {:4} | {:6} | {:8.3f} | {:8.2f} | {:8.3f} | {:8.2f} | {:8.3f} | {:8.2f} |\n", r.c.pp,
      r.c.tg, r.c.batch, r.n_kv(), r.t_pp, r.s_pp(), r.t_tg, r.s_tg(), r.t(), r.s());
}

std::string batched_bench_jsonl_row(const BatchedBenchResult& r, const BatchedBenchOptions& options) {
  const nlohmann::ordered_json row = {{"n_batch", options.n_batch},
                                      {"n_threads", options.num_threads},
                                      {"block_size", options.block_size},
                                      {"kv_dtype", to_string(options.kv_dtype)},
                                      {"pp", r.c.pp},
                                      {"tg", r.c.tg},
                                      {"pl", r.c.batch},
                                      {"n_kv", r.n_kv()},
                                      {"t_pp", r.t_pp},
                                      {"speed_pp", r.s_pp()},
                                      {"t_tg", r.t_tg},
                                      {"speed_tg", r.s_tg()},
                                      {"t", r.t()},
                                      {"speed", r.s()}};
  return row.dump() + "\n";
}

}  // namespace prunekv::bench
