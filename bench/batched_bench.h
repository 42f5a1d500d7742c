#pragma once
// llama.cpp's batched-bench on prunekv's forward: for each (PP, TG, B), B sequences are
// prefilled with PP tokens each (all B prompts in steps of at most n_batch tokens, like
// llama.cpp's n_batch; T_PP is their time), then TG decode steps of B tokens (T_TG). The
// Transformer runs directly on a fresh BlockPool per case, so the figures are the forward's own.
// Engine thread only (one Transformer, one TBB arena).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "model/model.h"
#include "model/transformer.h"

namespace prunekv::bench {

struct BatchedBenchCase {
  uint32_t pp = 0;  // prompt tokens per sequence
  uint32_t tg = 0;  // generated tokens per sequence
  uint32_t batch = 0;
};

struct BatchedBenchResult {
  BatchedBenchCase c;
  double t_pp = 0.0;  // seconds
  double t_tg = 0.0;

  size_t n_kv() const { return size_t{c.batch} * (c.pp + c.tg); }
  double s_pp() const { return t_pp > 0 ? double(c.batch) * c.pp / t_pp : 0.0; }
  double s_tg() const { return t_tg > 0 ? double(c.batch) * c.tg / t_tg : 0.0; }
  double t() const { return t_pp + t_tg; }
  double s() const { return t() > 0 ? double(n_kv()) / t() : 0.0; }
};

struct BatchedBenchOptions {
  int num_threads = 1;
  uint32_t block_size = 16;
  KvDtype kv_dtype = KvDtype::kF32;
  size_t n_batch = 2048;  // tokens per prefill step at most (llama.cpp -b)
  uint64_t seed = 0;      // the token ids fed
};

class BatchedBench {
 public:
  BatchedBench(const Model& model, const BatchedBenchOptions& options);
  ~BatchedBench();

  // Why the case cannot run (pp + tg beyond the model context, a zero size), or nothing.
  std::optional<std::string> skip_reason(const BatchedBenchCase& c) const;
  // Measures one case on a fresh pool. Requires !skip_reason(c).
  BatchedBenchResult run(const BatchedBenchCase& c);
  // One small prefill + decode, untimed: faults the weights in and sizes the scratch.
  void warm_up();

 private:
  const Model& model_;
  BatchedBenchOptions options_;
  Transformer transformer_;
};

// The cross product of the lists, PP outermost then TG then B (llama-batched-bench's order).
std::vector<BatchedBenchCase> batched_bench_cases(const std::vector<uint32_t>& pp,
                                                  const std::vector<uint32_t>& tg,
                                                  const std::vector<uint32_t>& batch);

// Runs `cases` in order after one warm-up, skipping (with a warning naming why) those that
// cannot run; each result goes to `on_result` as soon as it is measured, so a long table streams.
std::vector<BatchedBenchResult> run_batched_bench(
    BatchedBench& bench, const std::vector<BatchedBenchCase>& cases,
    const std::function<void(const BatchedBenchResult&)>& on_result);

// The markdown report's first line: build, model, n_batch, threads, block size and KV type.
std::string batched_bench_md_title(const Model& model, const BatchedBenchOptions& options);
// llama-batched-bench's markdown table: header + separator, then one row per result.
std::string batched_bench_md_header();
std::string batched_bench_md_row(const BatchedBenchResult& r);
// One JSON object per line with llama-batched-bench's field names (n_batch, n_threads, pp, tg,
// pl, n_kv, t_pp, speed_pp, t_tg, speed_tg, t, speed).
std::string batched_bench_jsonl_row(const BatchedBenchResult& r, const BatchedBenchOptions& options);

}  // namespace prunekv::bench
