#include "sim/simulated_policy.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "common/error.h"

namespace prunekv::sim {

SimulatedPolicy::SimulatedPolicy(std::string name, double keep_fraction, uint32_t protected_layers)
    : name_(std::move(name)), keep_fraction_(keep_fraction), protected_layers_(protected_layers) {
  if (!(keep_fraction > 0 && keep_fraction <= 1))
    throw ConfigError(fmt::format("simulated policy {}: kept fraction {} outside (0, 1]", name_, keep_fraction));
}

PrunePlan SimulatedPolicy::select(const PruneView& view) const {
  PrunePlan plan;
  plan.block_rounded = true;
  const KvLayout& layout = view.kv.layout();
  const double n = view.prompt_len, layers = layout.num_layers, block = layout.block_size;
  if (layout.num_layers <= protected_layers_ || view.prompt_len <= kNumSinkTokens + 1) return plan;
  // Tokens each prunable layer keeps so that the whole prompt keeps keep_fraction_ of entries.
  const double per_layer = (keep_fraction_ * layers * n - protected_layers_ * n) / (layers - protected_layers_);
  const double cut = n - std::clamp(per_layer, double(kNumSinkTokens + 1), n);
  // drop_range frees the blocks lying wholly inside [first, last]; block 0 holds the sinks, so
  // the freed blocks are [1, end / block): round the freed token count to the nearest block.
  const double last_whole_block_end = std::floor((n - 1) / block) * block;  // the last token stays
  const double end = std::min(block * (std::round(cut / block) + 1), last_whole_block_end);
  if (end <= block) return plan;
  for (uint32_t layer = protected_layers_; layer < layout.num_layers; ++layer)
    plan.cuts.push_back({layer, kNumSinkTokens, static_cast<Pos>(end) - 1});
  return plan;
}

std::unique_ptr<PruningPolicy> make_simulated_policy(std::string_view spec) {
  if (!spec.starts_with("sim:")) return make_pruning_policy(spec);
  const std::string_view rest = spec.substr(4);
  const size_t colon = rest.rfind(':');
  double keep = 0;
  if (colon == std::string_view::npos ||
      std::from_chars(rest.data() + colon + 1, rest.data() + rest.size(), keep).ptr != rest.data() + rest.size())
    throw ConfigError(fmt::format("simulated policy '{}': expected sim:NAME:KEEP", spec));
  const std::string name(rest.substr(0, colon));
  return std::make_unique<SimulatedPolicy>(name, keep, name.starts_with("dbudget") ? 2 : 0);
}

std::string simulated_policy_spec(std::string_view policy, double drawn_keep_fraction) {
  if (policy == "full") return "full";
  const size_t colon = policy.find(':');
  const std::string_view base = policy.substr(0, colon);
  if (base == "dbudget") return fmt::format("sim:{}:{:.4f}", policy, drawn_keep_fraction);
  // A fixed-budget policy ("snapkv:0.5"): its ratio is the kept fraction.
  double ratio = 0;
  const std::string_view param = colon == std::string_view::npos ? std::string_view{} : policy.substr(colon + 1);
  if (param.empty() || std::from_chars(param.data(), param.data() + param.size(), ratio).ptr != param.data() + param.size() ||
      !(ratio > 0 && ratio <= 1))
    throw ConfigError(fmt::format("policy '{}': the simulator runs full, dbudget[:...] or NAME:R with a kept ratio R in (0, 1]",
                                  policy));
  return fmt::format("sim:{}:{}", policy, ratio);
}

PolicyFactory simulated_policy_factory() {
  return [](std::string_view spec) { return make_simulated_policy(spec); };
}

}  // namespace prunekv::sim
