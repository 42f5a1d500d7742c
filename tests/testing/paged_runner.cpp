#include "tests/testing/paged_runner.h"

#include <algorithm>

#include "common/check.h"
#include "tests/testing/reference_forward.h"

namespace prunekv::testing {

PagedRunner::PagedRunner(const Model& model, uint32_t block_size, size_t num_blocks, int num_threads,
                         bool with_stats)
    : model_(model),
      pool_(std::make_unique<BlockPool>(model.config.kv_layout(block_size), num_blocks)),
      stats_group_(with_stats ? model.config.group_size() : 0),
      transformer_(model, num_threads) {}

PagedRunner::~PagedRunner() { seqs_.clear(); }

size_t PagedRunner::add_sequence() {
  seqs_.push_back({std::make_unique<SequenceKv>(*pool_, stats_group_), 0});
  return seqs_.size() - 1;
}

const std::vector<float>& PagedRunner::step(const std::vector<Chunk>& chunks) {
  batch_.clear();
  for (const Chunk& chunk : chunks) {
    Seq& seq = seqs_.at(chunk.seq);
    positions_.clear();
    for (size_t i = 0; i < chunk.tokens.size(); ++i) positions_.push_back(static_cast<Pos>(seq.num_fed + i));
    PKV_CHECK(seq.kv->append(positions_), "test pool of {} blocks is too small", pool_->num_total_blocks());
    batch_.add(seq.kv.get(), chunk.tokens, static_cast<Pos>(seq.num_fed), chunk.sample, chunk.stats);
    seq.num_fed += chunk.tokens.size();
  }
  transformer_.forward(batch_, logits_);
  return logits_;
}

std::span<const float> PagedRunner::logits_row(size_t sampling_index) const {
  const size_t vocab = model_.config.vocab_size;
  PKV_CHECK((sampling_index + 1) * vocab <= logits_.size());
  return {logits_.data() + sampling_index * vocab, vocab};
}

std::vector<std::vector<TokenId>> generate_greedy_batched(const Model& model,
                                                          const std::vector<std::vector<TokenId>>& prompts,
                                                          const std::vector<size_t>& max_new,
                                                          uint32_t block_size, int num_threads,
                                                          size_t chunk_size) {
  PKV_CHECK(prompts.size() == max_new.size());
  size_t total_tokens = 0;
  for (size_t i = 0; i < prompts.size(); ++i) total_tokens += prompts[i].size() + max_new[i];
  // Every list of every sequence, rounded up per list, with room to spare.
  const size_t lists = size_t{model.config.num_layers} * model.config.num_kv_heads;
  const size_t num_blocks = lists * (total_tokens / block_size + 2 * prompts.size() + 1);
  PagedRunner runner(model, block_size, num_blocks, num_threads);

  const auto& stop = model.stop_tokens;
  std::vector<std::vector<TokenId>> outputs(prompts.size());
  std::vector<bool> done(prompts.size(), false);
  std::vector<TokenId> next(prompts.size(), -1);  // sampled but not yet fed
  for (size_t i = 0; i < prompts.size(); ++i) {
    runner.add_sequence();
    done[i] = max_new[i] == 0;
  }

  while (true) {
    std::vector<PagedRunner::Chunk> chunks;
    for (size_t i = 0; i < prompts.size(); ++i) {
      if (done[i]) continue;
      const size_t fed = runner.num_fed(i);
      if (fed < prompts[i].size()) {
        const size_t take = chunk_size ? std::min(chunk_size, prompts[i].size() - fed) : prompts[i].size() - fed;
        std::vector<TokenId> piece(prompts[i].begin() + fed, prompts[i].begin() + fed + take);
        chunks.push_back({i, std::move(piece), fed + take == prompts[i].size(), std::nullopt});
      } else {
        chunks.push_back({i, {next[i]}, true, std::nullopt});
      }
    }
    if (chunks.empty()) break;
    runner.step(chunks);
    size_t row = 0;
    for (const auto& chunk : chunks) {
      if (!chunk.sample) continue;
      const TokenId token = argmax(runner.logits_row(row++));
      const size_t i = chunk.seq;
      if (std::find(stop.begin(), stop.end(), token) != stop.end()) {
        done[i] = true;
      } else {
        outputs[i].push_back(token);
        next[i] = token;
        done[i] = outputs[i].size() == max_new[i];
      }
      // A finished sequence gives its blocks back at once, as the engine does.
      if (done[i]) runner.kv(i).free_all();
    }
  }
  return outputs;
}

}  // namespace prunekv::testing
