#pragma once
// Puts a sharded batch back together: reads every shard's results and manifest, checks them
// against the input (the same file by size and hash, the same number of lines and shards, every
// line served exactly once, every results file as long as its manifest says), and writes each
// line's record in input order. Any failed check throws InputError naming the shard, file or
// line at fault, and nothing is written.
#include <cstddef>
#include <string>

namespace prunekv {

struct MergeSummary {
  size_t num_lines = 0;
  size_t num_shards = 0;
  size_t num_ok = 0;
  size_t num_error = 0;
};

// `shard_pattern` contains {shard} in its file name ("out/res-{shard}.jsonl"); the shards are
// the files of that folder matching it. `output_path` may be "-" (stdout).
MergeSummary merge_shards(const std::string& input_path, const std::string& shard_pattern,
                          const std::string& output_path);

}  // namespace prunekv
