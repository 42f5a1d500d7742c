#include "scheduler/shard_run.h"

#include <fmt/format.h>

#include <filesystem>

#include "common/error.h"
#include "common/log.h"
#include "scheduler/record_file.h"

namespace prunekv {
namespace fs = std::filesystem;

ShardRun::ShardRun(ShardRunOptions options, const BatchInput& input) : options_(std::move(options)) {
  const bool has_placeholder = options_.output_pattern.find(kShardPlaceholder) != std::string::npos;
  const std::optional<ShardAssignment>& shard = options_.shard;
  if (shard) {
    if (options_.input_path == "-" || options_.output_pattern == "-")
      throw ConfigError(
          "a sharded run needs --input and --output files: its manifest names the input by size and hash, "
          "and merge reads the output");
    if (shard->num_shards > 1 && !has_placeholder)
      throw ConfigError(fmt::format("--output \"{}\" has no {{shard}}: {} shards would write one file",
                                    options_.output_pattern, shard->num_shards));
    output_path_ = shard_path(options_.output_pattern, shard->shard_index);
  } else {
    if (has_placeholder)
      throw ConfigError(fmt::format(
          "--output \"{}\" contains {{shard}} but no shard was chosen: pass --num-shards and --shard-index, or "
          "run under a launcher (mpirun, a Slurm array, a Kubernetes Indexed Job, torchrun)",
          options_.output_pattern));
    output_path_ = options_.output_pattern;
  }
  if (options_.resume && output_path_ == "-")
    throw ConfigError("--resume needs an --output file: it reads the records an earlier run left there");

  manifest_.input_path = options_.input_path;
  manifest_.num_input_lines = input.lines.size();
  manifest_.format = input.format;
  if (shard) {
    manifest_.num_shards = shard->num_shards;
    manifest_.shard_index = shard->shard_index;
    manifest_.shard_source = shard->source;
    manifest_.input = fingerprint_file(options_.input_path);
    // A manifest left by an earlier run would vouch for an output this run is about to change.
    fs::remove(manifest_path_for(output_path_));
  }
  manifest_.output_path = output_path_;
  for (size_t i = 0; i < input.lines.size(); ++i)
    if (!shard || shard->serves(i)) manifest_.served_line_indices.push_back(i);

  const size_t done = options_.resume ? resume_from_output(input) : 0;
  manifest_.num_resumed = done;
  appends_ = options_.resume;
  pending_.assign(manifest_.served_line_indices.begin() + static_cast<std::ptrdiff_t>(done),
                  manifest_.served_line_indices.end());
}

size_t ShardRun::resume_from_output(const BatchInput& input) {
  auto log = log::get("cli");
  if (!fs::exists(output_path_)) {
    log->info("--resume: {} does not exist yet, serving all {} lines", output_path_, num_owned());
    return 0;
  }
  const RecordFile file = read_record_file(output_path_);
  const auto& owned = manifest_.served_line_indices;
  if (file.lines.size() > owned.size())
    throw InputError(fmt::format("--resume: {} holds {} records, more than the {} lines this run serves: it is "
                                 "the output of another input or shard; remove it or drop --resume",
                                 output_path_, file.lines.size(), owned.size()));
  for (size_t k = 0; k < file.lines.size(); ++k) {
    const nlohmann::json record = nlohmann::json::parse(file.lines[k], nullptr, /*allow_exceptions=*/false);
    const ParsedLine& line = input.lines[owned[k]];
    if (record.is_discarded() || record_id(input.format, record) != line.id)
      throw InputError(fmt::format(
          "--resume: record {} of {} is {}, expected the result of input line {} (id {}): the file is the "
          "output of another input or shard; remove it or drop --resume",
          k + 1, output_path_, record.is_discarded() ? "not JSON" : "for id " + record_id(input.format, record).dump(),
          line.line_number, line.id.dump()));
    ++(is_error_record(input.format, record) ? manifest_.num_error : manifest_.num_ok);
  }
  if (file.file_bytes > file.complete_bytes) {
    log->warn("--resume: cutting a partial last line ({} bytes) off {}", file.file_bytes - file.complete_bytes,
              output_path_);
    fs::resize_file(output_path_, file.complete_bytes);
  }
  log->info("--resume: {} of {} lines already answered in {}, serving the other {}", file.lines.size(),
            num_owned(), output_path_, num_owned() - file.lines.size());
  return file.lines.size();
}

void ShardRun::finish() {
  if (!options_.shard) return;
  manifest_.output_size_bytes = fs::file_size(output_path_);
  write_manifest(manifest_path_for(output_path_), manifest_);
}

}  // namespace prunekv
