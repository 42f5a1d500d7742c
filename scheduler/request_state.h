#pragma once
// The engine's record of one request (internal): its spec, every token so far (prompt, then
// generated), how many of them have K/V in the pool, its sequence KV, policy and sampler, and
// the output being built. Owned and touched by the engine thread only.
//
//   tokens:  [ prompt (num_prompt_tokens) | generated ... ]
//            [ computed (K/V in kv) ...  | not yet computed ]
//                                        ^ num_computed_tokens
// A fresh request computes its whole prompt, then one token per decode. After a preemption
// (recompute) num_computed_tokens is 0 again and the generated tokens are recomputed with it.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "memory/sequence_kv.h"
#include "model/sampler.h"
#include "scheduler/engine.h"
#include "scheduler/request.h"

namespace prunekv {
class PruningPolicy;
}

namespace prunekv::detail {

enum class RequestStatus : uint8_t { kQueued, kWaiting, kRunning, kEnded };

struct Request {
  Request(RequestId request_id, RequestSpec request_spec, Engine::OutputCallback callback)
      : id(request_id), spec(std::move(request_spec)), on_output(std::move(callback)) {}

  RequestId id;
  RequestSpec spec;
  Engine::OutputCallback on_output;

  RequestStatus status = RequestStatus::kQueued;
  std::vector<TokenId> tokens;  // prompt then generated
  size_t num_prompt_tokens = 0;
  size_t num_computed_tokens = 0;
  size_t max_computed_tokens = 0;  // high-water mark of num_computed_tokens: below it is recompute
  std::optional<SequenceKv> kv;  // present while running
  const PruningPolicy* policy = nullptr;  // owned by the engine's policy cache
  std::optional<Sampler> sampler;
  bool pruned = false;          // the current KV's prompt was pruned (reset by preemption)
  // Pruning during decode: W, the window of decode queries whose statistic the rule reads and
  // the newest tokens it keeps (0 = this request does not prune its generated tokens), and the
  // position count (num_computed_tokens) at which the next such prune is due, once pruned.
  int32_t generated_window = 0;
  size_t next_generated_prune = 0;
  uint64_t admission_order = 0;  // increases with every (re)admission: the preemption order
  double ready_time = 0.0;       // not admitted before this runner time
  size_t num_scheduled_tokens = 0;  // this step's chunk (0 when not scheduled)
  std::string failure;           // set when pruning failed: the request ends with kError this step
  bool ending = false;           // queued to end this step (ends exactly once)
  RequestOutput output;

  size_t num_tokens() const { return tokens.size(); }
  size_t num_uncomputed_tokens() const { return tokens.size() - num_computed_tokens; }
  bool prunes() const;
  // The prompt is computed but its KV not pruned yet.
  bool awaits_prune() const { return prunes() && !pruned && num_computed_tokens >= num_prompt_tokens; }
  // Tokens the next step may compute: all the uncomputed ones, except that a request that will
  // prune stops at the prompt end first, so that (after a preemption too) the tokens generated
  // afterwards attend to the pruned prompt exactly as they did the first time.
  bool prunes_generated() const { return pruned && generated_window > 0; }
  size_t max_next_chunk() const {
    if (prunes() && !pruned && num_computed_tokens < num_prompt_tokens) return num_prompt_tokens - num_computed_tokens;
    return num_uncomputed_tokens();
  }
};

}  // namespace prunekv::detail
