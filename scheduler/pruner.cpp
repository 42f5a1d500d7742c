#include "scheduler/pruner.h"

#include <exception>

#include <tbb/parallel_for.h>

#include "common/check.h"

namespace prunekv::detail {
namespace {

void prune_one(Request& request, uint32_t num_query_heads, PruneResult& result) noexcept {
  // A policy is not supposed to throw; if one does, the error fails this request alone instead
  // of cancelling the whole parallel loop.
  try {
    const auto prompt_len = static_cast<int32_t>(request.num_prompt_tokens);
    const PruneView view{*request.kv, prompt_len, num_query_heads};
    const PrunePlan plan = request.policy->select(view);
    result.outcome = apply_prune_plan(plan, *request.kv, prompt_len);
    // Pruning is once per prefill (a recompute starts a fresh KV with statistics again).
    request.kv->drop_stats();
  } catch (const std::exception& e) {
    result.error = e.what();
  }
}

}  // namespace

void prune_requests(std::span<Request* const> requests, uint32_t num_query_heads, tbb::task_arena& arena,
                    std::vector<PruneResult>& results) {
  results.assign(requests.size(), PruneResult{});
  for (const Request* r : requests) PKV_CHECK(r->kv && r->prunes(), "request {} cannot be pruned", r->id);
  if (requests.size() == 1) {
    prune_one(*requests[0], num_query_heads, results[0]);
    return;
  }
  // Grain 1: a prune costs O(prompt x layers x heads), large next to task overhead, and there
  // are rarely more requests than workers in one step.
  arena.execute([&] {
    tbb::parallel_for(tbb::blocked_range<size_t>(0, requests.size(), 1), [&](const tbb::blocked_range<size_t>& range) {
      for (size_t i = range.begin(); i != range.end(); ++i) prune_one(*requests[i], num_query_heads, results[i]);
    });
  });
}

}  // namespace prunekv::detail
