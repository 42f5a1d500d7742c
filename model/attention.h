#pragma once
// Paged GQA attention of one layer over every sequence of a step, reading K/V from each
// sequence's block lists. Work item = (step sequence, KV head); items touch disjoint lists and
// disjoint output rows, so the range kernel runs race-free under the TBB driver, and the serial
// and parallel drivers give bit-identical results (each item is computed the same way whatever
// thread runs it). Engine thread: reserve() then one driver; not reentrant.
#include <cstddef>
#include <cstdint>
#include <vector>

#include <tbb/task_arena.h>

#include "model/step_batch.h"

namespace prunekv {

// One layer's attention inputs for a step.
struct AttentionArgs {
  const StepBatch* batch = nullptr;
  uint32_t layer = 0;
  const float* q = nullptr;  // [num_tokens][num_heads * head_dim], RoPE applied
  float* out = nullptr;      // [num_tokens][num_heads * head_dim]
};

class PagedAttention {
 public:
  // num_workers: the most threads that may run the kernel at once (the arena's concurrency).
  PagedAttention(uint32_t num_heads, uint32_t num_kv_heads, uint32_t head_dim, size_t num_workers);

  // Grows the per-worker scratch to the longest list of `batch`; call before the drivers.
  void reserve(const StepBatch& batch);

  size_t num_work_items(const StepBatch& batch) const { return batch.seqs.size() * num_kv_heads_; }

  // The range kernel: work items [begin, end), item = seq_index * num_kv_heads + kv_head.
  // For a sequence with n new tokens (the last n slots of each list), new token i attends to
  // slots [0, num_slots - n + i] with weights softmax(q.k / sqrt(head_dim)), and records the
  // statistics the sequence asks for. `worker` picks the scratch, < num_workers.
  void run_range(const AttentionArgs& args, size_t begin, size_t end, size_t worker) noexcept;

  void run_serial(const AttentionArgs& args);
  // The plain scalar kernel (std::exp softmax, one dot per slot), serially: what the AVX2
  // kernel of run_range/run_serial/run_parallel is tested against.
  void run_reference(const AttentionArgs& args);
  // tbb::parallel_for over work items inside `arena` (whose concurrency <= num_workers).
  void run_parallel(const AttentionArgs& args, tbb::task_arena& arena);

 private:
  // AVX2/FMA when head_dim % 8 == 0: the sequence's tokens in tiles of tile_tokens_ (G query
  // rows each), each tile one pass over the K blocks for its scores, a vector exp per row, and
  // one pass over the V blocks with the rows' outputs accumulated in registers and normalised
  // by 1 / sum at the end.
  // Every row is computed by the same operations in the same order whatever its tile (decode
  // included), so a token's output does not depend on the tokens sharing its step.
  // Otherwise the reference.
  // `worker` picks the scratch: scores, block pointers, widened blocks.
  void run_item(const AttentionArgs& args, size_t item, size_t worker) noexcept;
  void run_item_reference(const AttentionArgs& args, size_t item, size_t worker) noexcept;
  // Points block_data_[worker] at the f32 K/V of each block of one list: the pool's blocks
  // themselves for an f32 cache; for an f16 cache, f32 copies widened into widened_[worker]
  // (both kernels then read f32, and the pool holds half the bytes). The copy is a plain stream
  // of whole blocks; widening in the kernels' loads instead, with the two passes each reading
  // half-blocks, measured slower once the cache is out of L3 (BM_Attention_PagedDecodeF16/32/1024:
  // 4.5-5.3 ms against 3.6-3.8 ms).
  void gather_blocks(const SequenceKv& kv, uint32_t layer, uint32_t kv_head, size_t worker) noexcept;
  // The G softmax rows of `token`: query head g's probabilities are probs[g * stride + j] *
  // inv_sum[g] (inv_sum null: probs are normalised).
  void record_stats(const AttentionArgs& args, const StepSequence& seq, uint32_t kv_head, size_t token,
                    size_t visible, const float* probs, size_t stride, const float* inv_sum) noexcept;

  uint32_t num_heads_;
  uint32_t num_kv_heads_;
  uint32_t head_dim_;
  uint32_t group_;  // query heads per KV head
  float scale_;
  size_t tile_tokens_;  // tokens per tile of the SIMD kernel
  size_t scratch_slots_ = 0;
  size_t row_stride_ = 0;  // floats per score row: >= scratch_slots_ + 8, a multiple of 8
  // per worker: scores [tile_tokens_ * G][row_stride_], then the rows' 1 / sums [tile_tokens_ * G]
  std::vector<std::vector<float>> scratch_;
  std::vector<std::vector<const float*>> block_data_;  // per worker: one list's block pointers
  std::vector<std::vector<float>> widened_;            // per worker: an f16 list's blocks as f32
};

}  // namespace prunekv
