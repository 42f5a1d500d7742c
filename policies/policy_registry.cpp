// make_pruning_policy / pruning_policy_help: policy specs are "name[:param]...", parameters
// separated by ':'. Bad specs are user input, so they throw ConfigError saying what was expected.
#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <string>
#include <vector>

#include "common/error.h"
#include "policies/policy_factories.h"

namespace prunekv {
namespace {

struct PolicyInfo {
  const char* name;
  const char* params;
  const char* defaults;
  const char* meaning;
};

constexpr PolicyInfo kPolicies[] = {
    {"full", "-", "-", "keep the whole KV cache (no statistics recorded)"},
    {"dbudget", "T=<t>, exact", "T=0.01, block-rounded",
     "threshold-free DBudgetKV/ReFreeKV: layers 2+ evict the oldest tokens after 4 sinks while the "
     "last-row attention norm drops <= T; 'exact' cuts token-exact (compaction)"},
    {"streaming", "R", "required", "StreamingLLM: 4 sinks + the most recent tokens, every layer"},
    {"h2o", "R", "required", "H2O one-shot: recent half of the budget + heavy hitters by accumulated attention, per KV head"},
    {"snapkv", "R", "required", "SnapKV: window 8 + top tokens by window attention (max-pool 7), per KV head"},
    {"pyramidkv", "R", "required", "PyramidKV: SnapKV with budgets from 1.5R (layer 0) down to 0.5R (last layer)"},
    {"knorm", "R", "required", "lowest key L2 norms per KV head, plus the most recent 8 tokens"},
    {"topp", "eps=<e>", "eps=0.001",
     "threshold-free top-p (default of generate): per KV head keep 4 sinks, the last 32 tokens and the "
     "fewest others holding all but eps of every query head's attention from the last 32 prompt queries; "
     "every layer, token-exact (compaction)"},
    {"topp-blk", "eps=<e>", "eps=0.003",
     "topp over whole blocks: per KV head keep block 0, the window's blocks and the fewest others holding "
     "all but eps of the window attention; unlinks the rest (no data movement)"},
    {"dbudget-l1", "eps=<e>", "eps=0.01",
     "dbudget's oldest-first cut stopped on L1 mass: per layer drop blocks 1..b-1 for the largest b that "
     "leaves every query head all but eps of its window attention (last 32 queries); every layer"},
};

std::vector<std::string_view> split(std::string_view spec, char sep) {
  std::vector<std::string_view> parts;
  size_t begin = 0;
  while (true) {
    const size_t end = spec.find(sep, begin);
    parts.push_back(spec.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin));
    if (end == std::string_view::npos) return parts;
    begin = end + 1;
  }
}

double parse_number(std::string_view text, std::string_view spec, std::string_view what) {
  double value = 0.0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(value)) {
    throw ConfigError(fmt::format("pruning policy '{}': {} must be a number, found '{}'", spec, what, text));
  }
  return value;
}

double parse_keep_ratio(const std::vector<std::string_view>& parts, std::string_view spec) {
  if (parts.size() != 2) {
    throw ConfigError(fmt::format("pruning policy '{}': expected '{}:R' with one kept fraction R in (0, 1], "
                                  "found {} parameters", spec, parts[0], parts.size() - 1));
  }
  const double ratio = parse_number(parts[1], spec, "the kept fraction R");
  if (!(ratio > 0.0 && ratio <= 1.0)) {
    throw ConfigError(fmt::format("pruning policy '{}': kept fraction R must be in (0, 1], found {}", spec, ratio));
  }
  return ratio;
}

detail::DBudgetParams parse_dbudget(const std::vector<std::string_view>& parts, std::string_view spec) {
  detail::DBudgetParams params;
  bool seen_threshold = false;
  for (size_t i = 1; i < parts.size(); ++i) {
    const std::string_view part = parts[i];
    if (part == "exact" && !params.exact) {
      params.exact = true;
    } else if (part.starts_with("T=") && !seen_threshold) {
      seen_threshold = true;
      params.threshold = parse_number(part.substr(2), spec, "the threshold T");
      if (!(params.threshold >= 0.0 && params.threshold < 1.0)) {
        throw ConfigError(fmt::format("pruning policy '{}': threshold T must be in [0, 1), found {}", spec, params.threshold));
      }
    } else {
      throw ConfigError(fmt::format("pruning policy '{}': unknown or repeated parameter '{}'; dbudget takes "
                                    "'T=<threshold>' and 'exact', e.g. 'dbudget:T=0.005:exact'", spec, part));
    }
  }
  return params;
}

// "NAME[:eps=<e>]" with e in [0, 1).
double parse_epsilon(const std::vector<std::string_view>& parts, std::string_view spec, double default_epsilon) {
  if (parts.size() == 1) return default_epsilon;
  if (parts.size() != 2 || !parts[1].starts_with("eps=")) {
    throw ConfigError(fmt::format("pruning policy '{}': {} takes one optional parameter 'eps=<e>', e.g. '{}:eps={:g}'",
                                  spec, parts[0], parts[0], default_epsilon));
  }
  const double epsilon = parse_number(parts[1].substr(4), spec, "eps");
  if (!(epsilon >= 0.0 && epsilon < 1.0)) {
    throw ConfigError(fmt::format("pruning policy '{}': eps must be in [0, 1), found {}", spec, epsilon));
  }
  return epsilon;
}

}  // namespace

std::unique_ptr<PruningPolicy> make_pruning_policy(std::string_view spec) {
  const std::vector<std::string_view> parts = split(spec, ':');
  const std::string_view name = parts[0];
  if (name == "full") {
    if (parts.size() != 1) throw ConfigError(fmt::format("pruning policy '{}': 'full' takes no parameters", spec));
    return detail::make_full_policy();
  }
  if (name == "dbudget") return detail::make_dbudget_policy(parse_dbudget(parts, spec));
  if (name == "streaming") return detail::make_streaming_policy(parse_keep_ratio(parts, spec));
  if (name == "h2o") return detail::make_h2o_policy(parse_keep_ratio(parts, spec));
  if (name == "snapkv") return detail::make_snapkv_policy(parse_keep_ratio(parts, spec));
  if (name == "pyramidkv") return detail::make_pyramidkv_policy(parse_keep_ratio(parts, spec));
  if (name == "knorm") return detail::make_knorm_policy(parse_keep_ratio(parts, spec));
  if (name == "topp") return detail::make_topp_policy(parse_epsilon(parts, spec, detail::kTopPEpsilon));
  if (name == "topp-blk") return detail::make_topp_block_policy(parse_epsilon(parts, spec, detail::kTopPBlockEpsilon));
  if (name == "dbudget-l1") return detail::make_dbudget_l1_policy(parse_epsilon(parts, spec, detail::kDBudgetL1Epsilon));
  std::string names;
  for (const PolicyInfo& info : kPolicies) names += fmt::format("{}{}", names.empty() ? "" : ", ", info.name);
  throw ConfigError(fmt::format("unknown pruning policy '{}'; expected one of: {} (see --policy-help)", spec, names));
}

std::string pruning_policy_help() {
  std::string out = fmt::format("{:<10} {:<14} {:<22} {}\n", "policy", "parameters", "defaults", "meaning");
  for (const PolicyInfo& info : kPolicies) {
    out += fmt::format("{:<10} {:<14} {:<22} {}\n", info.name, info.params, info.defaults, info.meaning);
  }
  out += "R = kept fraction of prompt tokens, 0 < R <= 1 (at least 12 tokens are kept); eps = the share of "
         "each query head's window attention a threshold-free rule may drop, 0 <= eps < 1; parameters "
         "follow the name after ':', e.g. snapkv:0.5, dbudget:T=0.005:exact, topp:eps=0.002\n"
         "--prune-every N (pruning during decode, off by default): every N decode steps, topp, topp-blk and "
         "dbudget-l1 re-apply their rule to the request's generated tokens, with the window statistic of its last "
         "min(32, N) decode queries; the prompt's decision stands, the newest min(32, N) tokens stay, and the "
         "freed blocks go back to the pool in the same step. The other policies ignore it (the prompt prune is "
         "their only one).\n";
  return out;
}

}  // namespace prunekv
