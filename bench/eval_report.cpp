#include "bench/eval_report.h"

#include <fmt/format.h>

#include <algorithm>

namespace prunekv::bench {
namespace {

template <typename Field>
double mean_of(const std::vector<EvalRequestResult>& requests, Field field) {
  if (requests.empty()) return 0.0;
  double sum = 0.0;
  for (const auto& r : requests) sum += field(r);
  return sum / static_cast<double>(requests.size());
}

std::vector<double> sorted_kept(const std::vector<EvalRequestResult>& requests) {
  std::vector<double> kept;
  for (const auto& r : requests) kept.push_back(r.kv_kept_fraction);
  std::sort(kept.begin(), kept.end());
  return kept;
}

}  // namespace

size_t EvalPolicyResult::num_exact() const {
  return static_cast<size_t>(
      std::count_if(requests.begin(), requests.end(), [](const auto& r) { return r.exact; }));
}

double EvalPolicyResult::exact_agreement() const {
  return requests.empty() ? 0.0 : static_cast<double>(num_exact()) / static_cast<double>(requests.size());
}

double EvalPolicyResult::mean_prefix_fraction() const {
  return mean_of(requests, [](const auto& r) { return r.prefix_fraction; });
}

double EvalPolicyResult::mean_kv_kept_fraction() const {
  return mean_of(requests, [](const auto& r) { return r.kv_kept_fraction; });
}

double EvalPolicyResult::mean_kv_kept_block_fraction() const {
  return mean_of(requests, [](const auto& r) { return r.kv_kept_block_fraction; });
}

size_t EvalPolicyResult::blocks_freed() const {
  size_t sum = 0;
  for (const auto& r : requests) sum += r.blocks_freed;
  return sum;
}

double EvalPolicyResult::kept_fraction_min() const {
  const auto kept = sorted_kept(requests);
  return kept.empty() ? 0.0 : kept.front();
}

double EvalPolicyResult::kept_fraction_median() const {
  const auto kept = sorted_kept(requests);
  if (kept.empty()) return 0.0;
  const size_t mid = kept.size() / 2;
  return kept.size() % 2 == 1 ? kept[mid] : 0.5 * (kept[mid - 1] + kept[mid]);
}

double EvalPolicyResult::kept_fraction_max() const {
  const auto kept = sorted_kept(requests);
  return kept.empty() ? 0.0 : kept.back();
}

EvalRequestResult compare_with_full(const RequestOutput& full, const RequestOutput& pruned) {
  EvalRequestResult result;
  result.id = pruned.id;
  const auto& a = full.output_tokens;
  const auto& b = pruned.output_tokens;
  const auto [a_end, b_end] = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
  const size_t common = static_cast<size_t>(a_end - a.begin());
  result.exact = a == b;
  // An empty full output has nothing to diverge from: agreement is complete exactly when the
  // pruned output is empty too.
  result.prefix_fraction =
      a.empty() ? (b.empty() ? 1.0 : 0.0) : static_cast<double>(common) / static_cast<double>(a.size());
  result.kv_kept_fraction = pruned.kv_kept_fraction;
  result.kv_kept_block_fraction = pruned.kv_kept_block_fraction;
  result.blocks_freed = pruned.blocks_freed_by_pruning;
  result.num_output_tokens = b.size();
  return result;
}

nlohmann::ordered_json eval_json(const std::vector<EvalPolicyResult>& results) {
  nlohmann::ordered_json policies = nlohmann::ordered_json::array();
  for (const auto& p : results) {
    nlohmann::ordered_json requests = nlohmann::ordered_json::array();
    for (const auto& r : p.requests)
      requests.push_back({{"id", r.id},
                          {"exact", r.exact},
                          {"prefix_fraction", r.prefix_fraction},
                          {"kv_kept_fraction", r.kv_kept_fraction},
                          {"kv_kept_block_fraction", r.kv_kept_block_fraction},
                          {"blocks_freed", r.blocks_freed},
                          {"num_output_tokens", r.num_output_tokens}});
    policies.push_back({{"policy", p.policy},
                        {"num_requests", p.requests.size()},
                        {"num_exact", p.num_exact()},
                        {"exact_agreement", p.exact_agreement()},
                        {"mean_prefix_fraction", p.mean_prefix_fraction()},
                        {"mean_kv_kept_fraction", p.mean_kv_kept_fraction()},
                        {"mean_kv_kept_block_fraction", p.mean_kv_kept_block_fraction()},
                        {"blocks_freed", p.blocks_freed()},
                        {"kept_fraction_min", p.kept_fraction_min()},
                        {"kept_fraction_median", p.kept_fraction_median()},
                        {"kept_fraction_max", p.kept_fraction_max()},
                        {"requests", std::move(requests)}});
  }
  return {{"policies", std::move(policies)}};
}

std::string eval_table(const std::vector<EvalPolicyResult>& results) {
  std::string out =
      "| policy | exact | agreement | prefix kept | kept tokens | kept blocks | blocks freed | kept min / "
      "median / max |\n"
      "|---|---:|---:|---:|---:|---:|---:|---|\n";
  for (const auto& p : results)
    out +=
        fmt::format("| {} | {}/{} | {:.3f} | {:.3f} | {:.3f} | {:.3f} | {} | {:.3f} / {:.3f} / {:.3f} |\n",
                    p.policy, p.num_exact(), p.requests.size(), p.exact_agreement(), p.mean_prefix_fraction(),
                    p.mean_kv_kept_fraction(), p.mean_kv_kept_block_fraction(), p.blocks_freed(),
                    p.kept_fraction_min(), p.kept_fraction_median(), p.kept_fraction_max());
  return out;
}

}  // namespace prunekv::bench
