#pragma once
// Attention statistics kept per KV slot, so that compaction moves them with their tokens. The
// forward step writes them (only for sequences that ask) and pruning policies read them; they
// live here so model/ and policies/ never include each other.
//
// Per slot of a (layer, KV head) list: G floats for each statistic the sequence carries (the ones
// its policy reads), G = query heads per KV head, laid out [stat][g] in SlotStat order; query
// head h = kv_head * G + g.
#include <cstdint>

namespace prunekv {

enum class SlotStat : uint32_t {
  kLastRow = 0,      // softmax weight from the last prompt token's query (DBudgetKV)
  kWindowSum = 1,    // sum of softmax weights from the last `window` prompt queries (SnapKV)
  kAccumulated = 2,  // sum of softmax weights from every prompt query (H2O)
};
inline constexpr uint32_t kNumSlotStats = 3;

// A set of SlotStat: bit stat_bit(s) set = record s.
using StatMask = uint32_t;
constexpr StatMask stat_bit(SlotStat s) { return StatMask{1} << static_cast<uint32_t>(s); }
inline constexpr StatMask kAllSlotStats = (StatMask{1} << kNumSlotStats) - 1;

// What a sequence asks the forward step to record while its prompt is prefilled. Queries at
// positions >= prompt_len (decode tokens) record nothing, and so does every query that feeds
// none of the requested statistics (for kLastRow alone: every query but the last prompt one).
// Statistics not in `stats` stay zero.
struct StatsRequest {
  int32_t prompt_len = 0;  // positions [0, prompt_len) are the prompt
  int32_t window = 8;      // SnapKV observation window: queries at prompt_len - window .. prompt_len - 1
  StatMask stats = kAllSlotStats;  // which SlotStat to record

  bool wants(SlotStat s) const { return (stats & stat_bit(s)) != 0; }
};

}  // namespace prunekv
