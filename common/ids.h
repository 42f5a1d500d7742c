#pragma once
#include <cstdint>

namespace prunekv {

using BlockId = uint32_t;  // index of a block in the pool's arena
using TokenId = int32_t;   // vocabulary id
using Pos = int32_t;       // a token's original position in its sequence; never renumbered
using SeqId = uint64_t;    // one request's sequence

inline constexpr BlockId kInvalidBlock = UINT32_MAX;

}  // namespace prunekv
