#include "scheduler/pruner.h"

#include <algorithm>
#include <exception>

#include <tbb/parallel_for.h>

#include "common/check.h"

namespace prunekv::detail {
namespace {

// Zeroes every carried statistic of every slot, so the next window's queries sum from zero.
void zero_stats(SequenceKv& kv) {
  const KvLayout& layout = kv.layout();
  for (uint32_t layer = 0; layer < layout.num_layers; ++layer) {
    for (uint32_t kv_head = 0; kv_head < layout.num_kv_heads; ++kv_head) {
      const size_t n = kv.num_slots(layer, kv_head);
      if (n > 0) std::fill_n(kv.slot_stats(layer, kv_head, 0), n * kv.stats_per_slot(), 0.0f);
    }
  }
}

void prune_prompt(Request& request, uint32_t num_query_heads, PruneResult& result) {
  const auto prompt_len = static_cast<int32_t>(request.num_prompt_tokens);
  const PruneView view{*request.kv, prompt_len, num_query_heads};
  const PrunePlan plan = request.policy->select(view);
  result.outcome = apply_prune_plan(plan, *request.kv, prompt_len);
  // Without pruning during decode this prune is the only one (a recompute starts a fresh KV
  // with statistics again), and statistics every decode token would grow are released.
  if (request.generated_window > 0)
    zero_stats(*request.kv);
  else
    request.kv->drop_stats();
}

void prune_generated(Request& request, uint32_t num_query_heads, PruneResult& result) {
  const GeneratedPruneView view{*request.kv, static_cast<int32_t>(request.num_prompt_tokens),
                                static_cast<int32_t>(request.next_generated_prune) - request.generated_window,
                                num_query_heads};
  const PrunePlan plan = request.policy->select_generated(view);
  result.outcome.blocks_freed = apply_generated_prune_plan(plan, *request.kv, view);
  zero_stats(*request.kv);
}

using PruneOne = void (*)(Request&, uint32_t, PruneResult&);

void run_one(PruneOne prune_one, Request& request, uint32_t num_query_heads, PruneResult& result) noexcept {
  // A policy is not supposed to throw; if one does, the error fails this request alone instead
  // of cancelling the whole parallel loop.
  try {
    prune_one(request, num_query_heads, result);
  } catch (const std::exception& e) {
    result.error = e.what();
  }
}

void run_all(PruneOne prune_one, std::span<Request* const> requests, uint32_t num_query_heads,
             tbb::task_arena& arena, std::vector<PruneResult>& results) {
  results.assign(requests.size(), PruneResult{});
  if (requests.size() == 1) {
    run_one(prune_one, *requests[0], num_query_heads, results[0]);
    return;
  }
  // Grain 1: a prune costs O(tokens x layers x heads), large next to task overhead, and there
  // are rarely more requests than workers in one step.
  arena.execute([&] {
    tbb::parallel_for(tbb::blocked_range<size_t>(0, requests.size(), 1), [&](const tbb::blocked_range<size_t>& range) {
      for (size_t i = range.begin(); i != range.end(); ++i) run_one(prune_one, *requests[i], num_query_heads, results[i]);
    });
  });
}

}  // namespace

void prune_requests(std::span<Request* const> requests, uint32_t num_query_heads, tbb::task_arena& arena,
                    std::vector<PruneResult>& results) {
  for (const Request* r : requests) PKV_CHECK(r->kv && r->prunes(), "request {} cannot be pruned", r->id);
  run_all(prune_prompt, requests, num_query_heads, arena, results);
}

void prune_generated_requests(std::span<Request* const> requests, uint32_t num_query_heads, tbb::task_arena& arena,
                              std::vector<PruneResult>& results) {
  for (const Request* r : requests)
    PKV_CHECK(r->kv && r->prunes_generated() && r->kv->has_stats() &&
                  r->next_generated_prune >= r->num_prompt_tokens + size_t(r->generated_window),
              "request {} cannot prune its generated tokens", r->id);
  run_all(prune_generated, requests, num_query_heads, arena, results);
}

}  // namespace prunekv::detail
