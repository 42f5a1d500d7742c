#include "bench/eval_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

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

size_t EvalPolicyResult::generated_blocks_freed() const {
  size_t sum = 0;
  for (const auto& r : requests) sum += r.generated_blocks_freed;
  return sum;
}

std::vector<double> EvalPolicyResult::mean_kv_blocks_held() const {
  std::vector<double> sum;
  std::vector<size_t> count;
  for (const auto& r : requests) {
    if (r.kv_blocks_held.size() > sum.size()) {
      sum.resize(r.kv_blocks_held.size(), 0.0);
      count.resize(r.kv_blocks_held.size(), 0);
    }
    for (size_t i = 0; i < r.kv_blocks_held.size(); ++i) {
      sum[i] += double(r.kv_blocks_held[i]);
      ++count[i];
    }
  }
  for (size_t i = 0; i < sum.size(); ++i) sum[i] /= double(count[i]);
  return sum;
}

double EvalPolicyResult::prompt_blocks_freed_fraction() const {
  size_t prompt_blocks = 0;
  for (const auto& r : requests) prompt_blocks += r.num_prompt_blocks;
  return prompt_blocks == 0 ? 0.0 : double(blocks_freed()) / double(prompt_blocks);
}

double EvalPolicyResult::mean_tf_agreement() const {
  return mean_of(requests, [](const auto& r) { return r.tf.agreement; });
}

double EvalPolicyResult::mean_tf_kl() const {
  return mean_of(requests, [](const auto& r) { return r.tf.mean_kl; });
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

TeacherForcedFidelity teacher_forced_fidelity(const std::vector<std::vector<float>>& full_logprobs,
                                              std::span<const TokenId> full_tokens,
                                              const std::vector<std::vector<float>>& pruned_logprobs) {
  TeacherForcedFidelity out;
  out.steps = std::min({full_tokens.size(), full_logprobs.size(), pruned_logprobs.size()});
  if (out.steps == 0) return out;
  size_t agreed = 0;
  double kl_sum = 0.0;
  for (size_t i = 0; i < out.steps; ++i) {
    const std::vector<float>& p = full_logprobs[i];
    const std::vector<float>& q = pruned_logprobs[i];
    const size_t vocab = std::min(p.size(), q.size());
    // max_element returns the first maximum: the lowest id wins ties, as in greedy sampling.
    const auto argmax = static_cast<TokenId>(std::max_element(q.begin(), q.begin() + std::ptrdiff_t(vocab)) - q.begin());
    agreed += argmax == full_tokens[i];
    double kl = 0.0;
    for (size_t v = 0; v < vocab; ++v) {
      const double log_p = p[v];
      if (std::isinf(log_p)) continue;  // p = 0 adds nothing
      kl += std::exp(log_p) * (log_p - double(q[v]));
    }
    kl_sum += kl;
  }
  out.agreement = double(agreed) / double(out.steps);
  out.mean_kl = kl_sum / double(out.steps);
  return out;
}

void add_teacher_forced(EvalRequestResult& result, const RequestOutput& full, const RequestOutput& forced) {
  result.tf = teacher_forced_fidelity(full.logprobs, full.output_tokens, forced.logprobs);
}

EvalRequestResult compare_with_full(const RequestOutput& full, const RequestOutput& pruned) {
  EvalRequestResult result;
  result.id = pruned.id;
  const auto& a = full.output_tokens;
  const auto& b = pruned.output_tokens;
  const auto [a_end, b_end] = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
  const size_t common = static_cast<size_t>(a_end - a.begin());
  result.exact = a == b;
  if (!result.exact) result.first_divergence = common;
  // An empty full output has nothing to diverge from: agreement is complete exactly when the
  // pruned output is empty too.
  result.prefix_fraction =
      a.empty() ? (b.empty() ? 1.0 : 0.0) : static_cast<double>(common) / static_cast<double>(a.size());
  result.kv_kept_fraction = pruned.kv_kept_fraction;
  result.kv_kept_block_fraction = pruned.kv_kept_block_fraction;
  result.blocks_freed = pruned.blocks_freed_by_pruning;
  result.num_prompt_blocks = pruned.num_prompt_blocks;
  result.num_output_tokens = b.size();
  result.generated_blocks_freed = pruned.blocks_freed_by_generated_pruning;
  result.kv_blocks_held = pruned.kv_blocks_held;
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
                          {"first_divergence", r.first_divergence ? nlohmann::ordered_json(*r.first_divergence) : nullptr},
                          {"tf_steps", r.tf.steps},
                          {"tf_agreement", r.tf.agreement},
                          {"tf_mean_kl", r.tf.mean_kl},
                          {"kv_kept_fraction", r.kv_kept_fraction},
                          {"kv_kept_block_fraction", r.kv_kept_block_fraction},
                          {"blocks_freed", r.blocks_freed},
                          {"num_prompt_blocks", r.num_prompt_blocks},
                          {"num_output_tokens", r.num_output_tokens},
                          {"generated_blocks_freed", r.generated_blocks_freed},
                          {"kv_blocks_held", r.kv_blocks_held}});
    const bool swept = !p.family.empty();
    policies.push_back({{"policy", p.policy},
                        {"family", swept ? nlohmann::ordered_json(p.family) : nullptr},
                        {"ratio", swept ? nlohmann::ordered_json(p.ratio) : nullptr},
                        {"num_requests", p.requests.size()},
                        {"num_exact", p.num_exact()},
                        {"exact_agreement", p.exact_agreement()},
                        {"mean_prefix_fraction", p.mean_prefix_fraction()},
                        {"mean_tf_agreement", p.mean_tf_agreement()},
                        {"mean_tf_kl", p.mean_tf_kl()},
                        {"mean_kv_kept_fraction", p.mean_kv_kept_fraction()},
                        {"mean_kv_kept_block_fraction", p.mean_kv_kept_block_fraction()},
                        {"blocks_freed", p.blocks_freed()},
                        {"prompt_blocks_freed_fraction", p.prompt_blocks_freed_fraction()},
                        {"kept_fraction_min", p.kept_fraction_min()},
                        {"kept_fraction_median", p.kept_fraction_median()},
                        {"kept_fraction_max", p.kept_fraction_max()},
                        {"prune_every", p.prune_every},
                        {"generated_blocks_freed", p.generated_blocks_freed()},
                        {"requests", std::move(requests)}});
  }
  return {{"policies", std::move(policies)}};
}

std::string eval_table(const std::vector<EvalPolicyResult>& results) {
  std::string out =
      "| policy | exact | agreement | TF agreement | mean KL (nats) | prefix kept | kept tokens | kept blocks | "
      "prompt blocks freed | blocks freed | kept min / median / max |\n"
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
  for (const auto& p : results)
    out += fmt::format(
        "| {} | {}/{} | {:.3f} | {:.4f} | {:.2e} | {:.3f} | {:.3f} | {:.3f} | {:.1f}% | {} | {:.3f} / {:.3f} / {:.3f} |\n",
        p.policy, p.num_exact(), p.requests.size(), p.exact_agreement(), p.mean_tf_agreement(), p.mean_tf_kl(),
        p.mean_prefix_fraction(), p.mean_kv_kept_fraction(), p.mean_kv_kept_block_fraction(),
        100.0 * p.prompt_blocks_freed_fraction(), p.blocks_freed(), p.kept_fraction_min(), p.kept_fraction_median(),
        p.kept_fraction_max());
  return out;
}

std::vector<PlotPanel> frontier_plot_panels(const std::vector<EvalPolicyResult>& results) {
  PlotPanel exact{"greedy outputs identical to the full cache's", "exact agreement", {}};
  PlotPanel forced{"teacher-forced top-1 agreement", "TF agreement", {}};
  auto add_point = [](PlotPanel& panel, const std::string& label, double x, double y) {
    auto it = std::find_if(panel.series.begin(), panel.series.end(), [&](const PlotSeries& s) { return s.label == label; });
    if (it == panel.series.end()) {
      panel.series.push_back(PlotSeries{label, {}, {}, /*markers=*/true});
      it = std::prev(panel.series.end());
    }
    it->x.push_back(x);
    it->y.push_back(y);
  };
  // Families first, each in ratio order, so a family's line runs along its sweep.
  std::vector<const EvalPolicyResult*> ordered;
  for (const auto& p : results) ordered.push_back(&p);
  std::stable_sort(ordered.begin(), ordered.end(), [](const EvalPolicyResult* a, const EvalPolicyResult* b) {
    if (a->family.empty() != b->family.empty()) return !a->family.empty();
    return a->family < b->family || (a->family == b->family && a->ratio < b->ratio);
  });
  for (const EvalPolicyResult* p : ordered) {
    const std::string& label = p->family.empty() ? p->policy : p->family;
    const double freed = 100.0 * p->prompt_blocks_freed_fraction();
    add_point(exact, label, freed, p->exact_agreement());
    add_point(forced, label, freed, p->mean_tf_agreement());
  }
  return {exact, forced};
}

std::vector<PlotPanel> blocks_held_plot_panels(const std::vector<EvalPolicyResult>& results) {
  PlotPanel held{"KV blocks held per request (mean over the requests still generating)", "blocks", {}};
  for (const auto& p : results) {
    PlotSeries series{p.policy, {}, {}};
    const std::vector<double> mean = p.mean_kv_blocks_held();
    for (size_t i = 0; i < mean.size(); ++i) {
      series.x.push_back(double(i + 1));
      series.y.push_back(mean[i]);
    }
    held.series.push_back(std::move(series));
  }
  return {held};
}

}  // namespace prunekv::bench
