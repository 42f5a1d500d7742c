#pragma once
// The small JSON file a shard writes beside its results once it has finished them, so a merge
// can tell a missing or unfinished shard from an empty one and check that every line of the
// input was served exactly once. Written to "<output>.manifest.json" through a temporary file
// and a rename, so a reader never sees half of one:
//   {"manifest_version": 1, "input": {"path", "size_bytes", "hash": "fnv1a64:..."},
//    "num_input_lines", "format": "prunekv" | "openai-batch", "num_shards", "shard_index",
//    "shard_source", "output": {"path", "size_bytes"}, "served_line_indices": [...],
//    "num_ok", "num_error", "num_resumed"}
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/file_fingerprint.h"
#include "scheduler/batch_file.h"

namespace prunekv {

struct ShardManifest {
  std::string input_path;
  FileFingerprint input;
  size_t num_input_lines = 0;  // non-blank lines of the input
  BatchFormat format = BatchFormat::kPrunekv;
  uint32_t num_shards = 1;
  uint32_t shard_index = 0;
  std::string shard_source;                  // ShardAssignment::source
  std::string output_path;
  uint64_t output_size_bytes = 0;            // the results file when the shard finished
  std::vector<size_t> served_line_indices;   // ascending; the k-th record answers the k-th index
  size_t num_ok = 0;
  size_t num_error = 0;
  size_t num_resumed = 0;  // records found in the output by --resume, not served by the last run
};

// "<output_path>.manifest.json".
std::string manifest_path_for(const std::string& output_path);

// Throws InputError when the file cannot be written.
void write_manifest(const std::string& path, const ShardManifest& manifest);
// Throws InputError naming the path and the field that is missing or of the wrong type.
ShardManifest read_manifest(const std::string& path);

}  // namespace prunekv
