#pragma once
// Helpers for the engine tests: prompts made of token ids, a config on a tiny pool, and a
// recorder of every request's end.
#include <map>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "scheduler/engine.h"

namespace prunekv::testing {

// BOS then `prompt_len - 1` ids in 3..40, seeded by `seed`.
inline std::vector<TokenId> make_prompt(size_t prompt_len, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<TokenId> tokens{1};
  while (tokens.size() < prompt_len) tokens.push_back(static_cast<TokenId>(3 + rng() % 38));
  return tokens;
}

inline RequestSpec make_spec(std::string id, size_t prompt_len, uint32_t max_tokens, std::string policy = {}) {
  RequestSpec spec;
  spec.prompt_tokens = make_prompt(prompt_len, std::hash<std::string>{}(id));
  spec.id = std::move(id);
  spec.max_tokens = max_tokens;
  spec.ignore_eos = true;
  spec.policy = std::move(policy);
  return spec;
}

// One list (1 layer, 1 KV head), blocks of 4 tokens: a request of n tokens holds ceil(n/4).
inline EngineConfig tiny_config(size_t num_blocks, size_t max_num_batched_tokens) {
  EngineConfig config;
  config.num_kv_blocks = num_blocks;
  config.block_size = 4;
  config.max_num_batched_tokens = max_num_batched_tokens;
  config.admission_reserve_fraction = 0.0;
  return config;
}

// Records every callback: ends must happen exactly once per request.
struct EndRecorder {
  std::map<RequestId, RequestOutput> ended;
  std::map<RequestId, int> end_count;
  std::map<RequestId, size_t> streamed;  // non-final callbacks

  Engine::OutputCallback callback() {
    return [this](const RequestOutput& output, bool finished) {
      if (finished) {
        ++end_count[output.request_id];
        ended[output.request_id] = output;
      } else {
        ++streamed[output.request_id];
      }
    };
  }
};

}  // namespace prunekv::testing
