#pragma once
// The bookkeeping of one `generate` run over a batch file: which lines it serves (its shard's,
// or all), which of them an interrupted earlier run already answered (--resume), where the
// results go, and the manifest it writes once every line it owns has a record. The engine loop
// itself stays with the caller. One thread.
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "scheduler/batch_file.h"
#include "scheduler/shard_assignment.h"
#include "scheduler/shard_manifest.h"

namespace prunekv {

struct ShardRunOptions {
  std::string input_path;
  std::string output_pattern;            // may contain {shard}; "-" is stdout
  std::optional<ShardAssignment> shard;  // nullopt: every line, no manifest
  bool resume = false;                   // keep the records already in the output file
};

class ShardRun {
 public:
  // Resolves the output path, removes a stale manifest, and with `resume` checks the records
  // already in the output against this shard's lines (cutting off a partial last line).
  // Throws ConfigError for flags that cannot work together ({shard} without a shard, several
  // shards writing one file, stdin or stdout where a file is needed) and InputError for an
  // output file that answers other lines.
  ShardRun(ShardRunOptions options, const BatchInput& input);

  const std::string& output_path() const { return output_path_; }
  // True when the output file must be appended to rather than replaced.
  bool appends() const { return appends_; }
  // The line indices still to serve, ascending.
  const std::vector<size_t>& pending() const { return pending_; }
  size_t num_owned() const { return manifest_.served_line_indices.size(); }
  size_t num_resumed() const { return manifest_.num_resumed; }

  // Counts one written record of a pending line.
  void count_record(bool ok) { ++(ok ? manifest_.num_ok : manifest_.num_error); }
  // Writes the manifest (sharded runs only) once the output file is complete and closed.
  void finish();

 private:
  // Keeps the records of `owned` lines already in the output; returns how many.
  size_t resume_from_output(const BatchInput& input);

  ShardRunOptions options_;
  std::string output_path_;
  bool appends_ = false;
  std::vector<size_t> pending_;
  ShardManifest manifest_;
};

}  // namespace prunekv
