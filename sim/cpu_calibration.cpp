#include "sim/cpu_calibration.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <optional>

#include "common/check.h"
#include "common/error.h"
#include "common/large_buffer.h"
#include "common/log.h"
#include "common/stopwatch.h"
#include "memory/block_pool.h"
#include "memory/sequence_kv.h"
#include "model/step_batch.h"
#include "model/transformer.h"

namespace prunekv::sim {
namespace {

// Solves the least-squares problem min sum_i ((row_i . x - y_i) / y_i)^2 over the given columns
// by normal equations (at most 3 unknowns, columns scaled to 1 so the system is well posed).
std::optional<std::vector<double>> least_squares(const std::vector<std::vector<double>>& columns,
                                                 const std::vector<double>& y, const std::vector<double>& weight) {
  const size_t k = columns.size();
  std::vector<double> scale(k, 0.0);
  for (size_t c = 0; c < k; ++c)
    for (size_t i = 0; i < y.size(); ++i) scale[c] = std::max(scale[c], std::abs(columns[c][i] * weight[i]));
  std::vector<std::vector<double>> a(k, std::vector<double>(k + 1, 0.0));
  for (size_t i = 0; i < y.size(); ++i) {
    for (size_t r = 0; r < k; ++r) {
      if (scale[r] == 0) return std::nullopt;
      const double xr = columns[r][i] * weight[i] / scale[r];
      for (size_t c = 0; c < k; ++c) a[r][c] += xr * columns[c][i] * weight[i] / scale[c];
      a[r][k] += xr * y[i] * weight[i];
    }
  }
  for (size_t p = 0; p < k; ++p) {  // Gaussian elimination with partial pivoting
    size_t best = p;
    for (size_t r = p + 1; r < k; ++r)
      if (std::abs(a[r][p]) > std::abs(a[best][p])) best = r;
    if (std::abs(a[best][p]) < 1e-12) return std::nullopt;
    std::swap(a[p], a[best]);
    for (size_t r = 0; r < k; ++r) {
      if (r == p) continue;
      const double f = a[r][p] / a[p][p];
      for (size_t c = p; c <= k; ++c) a[r][c] -= f * a[p][c];
    }
  }
  std::vector<double> x(k);
  for (size_t c = 0; c < k; ++c) x[c] = a[c][k] / a[c][c] / scale[c];
  return x;
}

// A throwaway token id that is valid for any vocabulary.
TokenId token_for(size_t i, uint32_t vocab) { return static_cast<TokenId>((i * 7 + 1) % vocab); }

}  // namespace

DeviceProfile fit_cpu_profile(const std::vector<CalibrationSample>& samples, double memory_bandwidth) {
  if (samples.size() < 3 || !(memory_bandwidth > 0))
    throw ConfigError(fmt::format("cpu calibration: {} samples at bandwidth {}, expected >= 3 and > 0", samples.size(),
                                  memory_bandwidth));
  std::vector<double> y, weight, ones, linear, attention, both;
  for (const CalibrationSample& s : samples) {
    y.push_back(std::max(s.seconds - s.memory_bytes / memory_bandwidth, 0.0));
    weight.push_back(1.0 / s.seconds);  // relative error: decode steps count as much as prefills
    ones.push_back(1.0);
    linear.push_back(s.linear_flops);
    attention.push_back(s.attention_flops);
    both.push_back(s.linear_flops + s.attention_flops);
  }
  double overhead = 0, inv_linear = 0, inv_attention = 0;
  auto valid = [](const std::optional<std::vector<double>>& x) {
    return x && std::all_of(x->begin(), x->end(), [](double v) { return v >= 0; }) && x->back() > 0;
  };
  // Most general first; pin what noise drives negative.
  if (auto x = least_squares({ones, attention, linear}, y, weight); valid(x) && (*x)[1] > 0) {
    overhead = (*x)[0], inv_attention = (*x)[1], inv_linear = (*x)[2];
  } else if (auto x2 = least_squares({attention, linear}, y, weight); valid(x2) && (*x2)[0] > 0) {
    inv_attention = (*x2)[0], inv_linear = (*x2)[1];
  } else if (auto x3 = least_squares({ones, both}, y, weight); valid(x3)) {
    overhead = (*x3)[0], inv_linear = inv_attention = (*x3)[1];
  } else if (auto x4 = least_squares({both}, y, weight); valid(x4)) {
    inv_linear = inv_attention = (*x4)[0];
  } else {
    throw ConfigError("cpu calibration: the timed steps fit no positive compute rate");
  }
  DeviceProfile profile;
  profile.name = "cpu";
  profile.peak_flops = 1.0 / inv_linear;
  profile.attention_flops = 1.0 / inv_attention;
  profile.memory_bandwidth = memory_bandwidth;
  profile.step_overhead_s = overhead;
  profile.weight_bytes_per_param = 4;
  profile.overlap = false;
  profile.memory_bytes = physical_memory_bytes();
  return profile;
}

CpuCalibration calibrate_cpu_for_model(const Model& model, int num_threads) {
  const ModelConfig& config = model.config;
  constexpr uint32_t kBlockSize = 16, kShort = 32, kLong = 160, kMaxDecodes = 8;
  constexpr size_t kSeqs = 16, kLongSeqs = 4;
  if (config.context_length < kLong + kMaxDecodes + 2)
    throw ConfigError(fmt::format("cpu calibration: model '{}' has a context of {} tokens, needs {}", config.name,
                                  config.context_length, kLong + kMaxDecodes + 2));
  const KvLayout layout = config.kv_layout(kBlockSize, KvDtype::kF32);
  const size_t per_seq = layout.num_lists() * layout.blocks_for_slots(kLong + kMaxDecodes + 2);
  BlockPool pool(layout, per_seq * (kSeqs + 1));
  Transformer transformer(model, num_threads);
  // Unit rates: the cost model then returns the raw FLOP and byte counts of a step.
  DeviceProfile unit{"unit", 1.0, 1.0, 1, 0.0, 4};
  unit.overlap = false;
  const CostModel counts(config, unit, KvDtype::kF32);

  std::vector<SequenceKv> seqs;
  seqs.reserve(kSeqs + 1);
  for (size_t i = 0; i <= kSeqs; ++i) seqs.emplace_back(pool);
  std::vector<float> logits;
  StepBatch batch;
  std::vector<SequenceWork> work;
  CpuCalibration result;

  // One step: `tokens` new tokens for each of seqs[first, first + count); records its sample.
  auto step = [&](size_t first, size_t count, uint32_t tokens, bool record) {
    batch.clear();
    work.clear();
    std::vector<TokenId> chunk(tokens);
    for (size_t s = first; s < first + count; ++s) {
      SequenceKv& kv = seqs[s];
      const Pos start = static_cast<Pos>(kv.num_slots(0, 0));
      std::vector<Pos> positions(tokens);
      std::iota(positions.begin(), positions.end(), start);
      for (uint32_t t = 0; t < tokens; ++t) chunk[t] = token_for(size_t(start) + t, config.vocab_size);
      PKV_CHECK(kv.append(positions), "cpu calibration: pool too small");
      batch.add(&kv, chunk, start, true);
      work.push_back({tokens, kv.num_slots_total(), true});
    }
    Stopwatch watch;
    transformer.forward(batch, logits);
    const double seconds = watch.seconds();
    if (!record) return;
    const StepCost cost = counts.step_cost(work);
    result.samples.push_back({cost.linear_flops, cost.attention_flops, cost.bytes(), seconds});
  };

  step(kSeqs, 1, kShort, false);  // warm up: page faults, scratch buffers, thread pool
  step(kSeqs, 1, 1, false);
  // Decode steps are short and noisy: three of each, keeping the median.
  auto decode = [&](size_t count) {
    for (int rep = 0; rep < 3; ++rep) step(0, count, 1, true);
    std::sort(result.samples.end() - 3, result.samples.end(),
              [](const CalibrationSample& a, const CalibrationSample& b) { return a.seconds < b.seconds; });
    std::swap(result.samples.end()[-3], result.samples.end()[-2]);
    result.samples.resize(result.samples.size() - 2);
  };
  step(0, kSeqs, kShort, true);  // a prefill of 16 x 32 tokens
  for (size_t b : {size_t{1}, size_t{4}, kSeqs}) decode(b);  // short context
  step(0, 1, kLong - kShort, true);                          // one long chunk
  step(1, kLongSeqs - 1, kLong - kShort, true);              // three at once
  for (size_t b : {size_t{1}, kLongSeqs}) decode(b);         // long context
  for (SequenceKv& kv : seqs) kv.free_all();

  const double bandwidth = measure_read_bandwidth(0.1);
  result.profile = fit_cpu_profile(result.samples, bandwidth);
  for (const CalibrationSample& s : result.samples) {
    const double predicted = result.profile.step_overhead_s + s.linear_flops / result.profile.peak_flops +
                             s.attention_flops / result.profile.attention_rate() + s.memory_bytes / bandwidth;
    result.max_relative_error = std::max(result.max_relative_error, std::abs(predicted / s.seconds - 1.0));
    log::get("sim")->debug("calibration step: {:.3g} linear FLOP, {:.3g} attention FLOP, {:.3g} bytes: {:.2f} ms, fit {:.2f} ms",
                           s.linear_flops, s.attention_flops, s.memory_bytes, s.seconds * 1e3, predicted * 1e3);
  }
  log::get("sim")->info(
      "calibrated cpu on {} ({} threads, {} timed steps): GEMM {:.1f} GFLOP/s, attention {:.2f} GFLOP/s, "
      "bandwidth {:.1f} GB/s, step overhead {:.0f} us; worst step off by {:.0f}%",
      config.name, num_threads, result.samples.size(), result.profile.peak_flops / 1e9,
      result.profile.attention_flops / 1e9, bandwidth / 1e9, result.profile.step_overhead_s * 1e6,
      100 * result.max_relative_error);
  return result;
}

}  // namespace prunekv::sim
