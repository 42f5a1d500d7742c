#pragma once
// What a caller asks the engine for (RequestSpec) and what it gets back (RequestOutput). Plain
// values: safe to build on any thread and to copy across threads.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/ids.h"
#include "model/sampler.h"

namespace prunekv {

// Engine-assigned handle of a submitted request (1, 2, ...; never 0), unique per Engine.
using RequestId = uint64_t;
inline constexpr RequestId kInvalidRequest = 0;

struct RequestSpec {
  std::string id;                    // caller's label, echoed in the output
  std::string prompt;                // text, encoded with BOS; ignored when prompt_tokens is set
  std::vector<TokenId> prompt_tokens;  // token ids used as given (include BOS yourself)
  // true: special tokens' text in `prompt` (<s>, <|im_start|>) becomes their ids, as a rendered
  // chat template needs; false: all of the prompt is text, as OpenAI's completions treat it.
  bool parse_special_tokens = false;
  SamplingParams sampling;
  uint32_t max_tokens = 256;         // generated tokens at most (>= 1)
  std::vector<std::string> stop;     // stop strings, matched on the decoded output text
  bool ignore_eos = false;           // true: only max_tokens / stop strings end the request
  std::string policy;                // pruning policy spec ("dbudget", "snapkv:0.5"); empty = engine default
  // Seconds on the runner's clock before which the request is not admitted (simulated traces);
  // 0 = at submission.
  double arrival_time = 0.0;
  // Teacher forcing (fidelity evals): generated token i is forced_tokens[i] whatever the model
  // predicts (the sampler's choice is dropped), and the request ends after the last one (or at
  // a stop token among them). At most max_tokens of them; empty = the sampler decides.
  std::vector<TokenId> forced_tokens;
  // true: RequestOutput::logprobs gets each step's log-softmax over the whole vocabulary
  // (vocab_size floats per generated token: for evals, not for serving). Needs a runner that
  // computes logits (not the simulator).
  bool record_logprobs = false;
  // true: RequestOutput::kv_blocks_held gets the blocks the request holds after each step that
  // produced one of its tokens (pruning done): its KV footprint over its lifetime.
  bool record_kv_blocks = false;
};

enum class FinishReason : uint8_t { kStop, kLength, kCancelled, kError };
// "stop", "length", "cancelled", "error".
std::string_view to_string(FinishReason reason);

struct RequestOutput {
  RequestId request_id = kInvalidRequest;
  std::string id;                      // RequestSpec::id
  std::vector<TokenId> output_tokens;  // generated tokens; a stop token (EOS/BOS) is not included
  std::string text;                    // decoded output_tokens, cut before a matched stop string;
                                       // empty when the runner has no tokenizer
  size_t num_prompt_tokens = 0;        // the original prompt, recomputed tokens not counted
  FinishReason finish_reason = FinishReason::kLength;
  std::string error;                   // set when finish_reason == kError

  // Pruning (PruneOutcome of the request's one prune; 1.0 / 0 when nothing was pruned).
  double kv_kept_fraction = 1.0;        // kept (layer, KV head, prompt position) entries
  double kv_kept_block_fraction = 1.0;  // kept prompt blocks
  size_t blocks_freed_by_pruning = 0;
  // Blocks that held prompt slots before the prune, over every list (0 when nothing was pruned):
  // with blocks_freed_by_pruning, the pooled share of prompt blocks a policy frees over a set.
  size_t num_prompt_blocks = 0;
  size_t num_preemptions = 0;
  // Pruning during decode (EngineConfig::prune_every): prunes of the generated tokens and the
  // blocks they freed, over the request's life (recomputes included).
  size_t num_generated_prunes = 0;
  size_t blocks_freed_by_generated_pruning = 0;

  // Times in seconds on the runner's clock (ModelRunner::now()).
  double arrival_time = 0.0;       // submission, or RequestSpec::arrival_time when later
  double first_token_time = 0.0;   // 0 when no token was produced
  double finish_time = 0.0;
  double ttft = 0.0;               // first_token_time - arrival_time; 0 without a token
  double mean_tpot = 0.0;          // (finish_time - first_token_time) / (tokens - 1); 0 with < 2 tokens

  // With RequestSpec::record_logprobs: row i is the log-softmax of the logits that chose
  // generated token i (one more row than output_tokens when a stop token ended the request).
  std::vector<std::vector<float>> logprobs;
  // With RequestSpec::record_kv_blocks: entry i = blocks held after the step that produced
  // generated token i (a preemption's recompute shows as the climb back).
  std::vector<size_t> kv_blocks_held;

  bool finished() const { return finish_reason == FinishReason::kStop || finish_reason == FinishReason::kLength; }
};

}  // namespace prunekv
