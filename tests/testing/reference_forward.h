#pragma once
// A scalar reference forward of ONE sequence, written like llama2.c run.c forward(): plain loops
// (double accumulation), a contiguous K/V cache [layer][pos][kv_dim], no BLAS, no TBB, no paging.
// Optimised paths are checked against it. An optional keep predicate hides evicted positions
// from attention so pruned caches can be checked too.
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "common/ids.h"
#include "model/model.h"

namespace prunekv::testing {

class ReferenceForward {
 public:
  // keep(layer, kv_head, pos): whether attention may still read that position's K/V.
  using KeepFn = std::function<bool(uint32_t layer, uint32_t kv_head, Pos pos)>;

  explicit ReferenceForward(const Model& model);

  // Runs one token at position num_cached() (positions are dense here) and returns its
  // logits [vocab]; the reference stays valid until the next call.
  const std::vector<float>& step(TokenId token);
  // Runs tokens one by one; returns the last one's logits.
  const std::vector<float>& prefill(std::span<const TokenId> tokens);
  // Greedy continuation from the last step's logits (feed the prompt through prefill first): up
  // to max_new tokens, stopping at any token of `stop` (which is not returned).
  std::vector<TokenId> generate_greedy(size_t max_new, std::span<const TokenId> stop);

  // From the next step on, attention reads only the positions keep() accepts.
  void set_keep(KeepFn keep) { keep_ = std::move(keep); }

  size_t num_cached() const { return num_cached_; }
  // Softmax weights of the last step's query head `head` in `layer` over positions
  // [0, num_cached()): 0 where keep() hid the position.
  std::span<const float> attention_row(uint32_t layer, uint32_t head) const;
  const std::vector<float>& logits() const { return logits_; }

 private:
  const Model& model_;
  KeepFn keep_;
  size_t num_cached_ = 0;
  std::vector<std::vector<float>> key_cache_;    // [layer][pos * kv_dim]
  std::vector<std::vector<float>> value_cache_;  // [layer][pos * kv_dim]
  std::vector<std::vector<float>> att_rows_;     // [layer][head * num_cached]
  std::vector<float> logits_;
};

// Index of the largest value, lowest index on ties.
TokenId argmax(std::span<const float> values);

}  // namespace prunekv::testing
