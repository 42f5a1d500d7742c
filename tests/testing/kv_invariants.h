#pragma once
// Whole-pool accounting check for tests: after any operation, every block's ref count equals the
// number of lists (and raw holders) that hold it, used + free == total, every sequence's lists
// have the "full except last" shape and its num_blocks() matches its lists.
#include <gtest/gtest.h>

#include <span>

#include "common/ids.h"
#include "memory/block_pool.h"
#include "memory/sequence_kv.h"

namespace prunekv::testing {

// `sequences`: every live sequence on `pool`; `raw_held`: block references held outside any
// sequence (one entry per reference). Call only while no free is in flight on another thread.
::testing::AssertionResult pool_accounting_holds(const BlockPool& pool, std::span<const SequenceKv* const> sequences,
                                                 std::span<const BlockId> raw_held = {});

}  // namespace prunekv::testing
