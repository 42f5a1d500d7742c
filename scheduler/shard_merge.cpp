#include "scheduler/shard_merge.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <regex>

#include "common/error.h"
#include "common/file_fingerprint.h"
#include "common/output_file.h"
#include "scheduler/batch_file.h"
#include "scheduler/jsonl.h"
#include "scheduler/record_file.h"
#include "scheduler/shard_assignment.h"
#include "scheduler/shard_manifest.h"

namespace prunekv {
namespace {
namespace fs = std::filesystem;

struct Shard {
  std::string path;
  ShardManifest manifest;
  RecordFile records;
};

std::string regex_escape(std::string_view text) {
  static const std::regex special(R"([.^$|()\[\]{}*+?\\])");
  return std::regex_replace(std::string(text), special, R"(\$&)");
}

// Shard index -> path, for every file of the pattern's folder whose name matches it.
std::map<uint32_t, std::string> find_shard_files(const std::string& pattern) {
  const fs::path pattern_path(pattern);
  const std::string name = pattern_path.filename().string();
  const size_t at = name.find(kShardPlaceholder);
  if (at == std::string::npos || pattern_path.parent_path().string().find(kShardPlaceholder) != std::string::npos)
    throw InputError(fmt::format("--shards \"{}\": expected {{shard}} in the file name (e.g. out-{{shard}}.jsonl)",
                                 pattern));
  const std::regex matcher(regex_escape(name.substr(0, at)) + "([0-9]+)" +
                           regex_escape(name.substr(at + kShardPlaceholder.size())));
  const fs::path folder = pattern_path.has_parent_path() ? pattern_path.parent_path() : fs::path(".");
  std::map<uint32_t, std::string> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    std::smatch match;
    const std::string file = entry.path().filename().string();
    if (!entry.is_regular_file() || !std::regex_match(file, match, matcher)) continue;
    // "out-01.jsonl" is not what shard 1 writes; only the canonical spelling counts (and no
    // index past uint32_t).
    const std::string digits = match[1].str();
    if (digits.size() > 9 || digits != std::to_string(std::stoul(digits))) continue;
    const auto index = static_cast<uint32_t>(std::stoul(digits));
    files[index] = shard_path(pattern, index);
  }
  if (ec) throw InputError(fmt::format("--shards \"{}\": cannot list {}: {}", pattern, folder.string(), ec.message()));
  if (files.empty()) throw InputError(fmt::format("--shards \"{}\": no file matches", pattern));
  return files;
}

Shard load_shard(uint32_t index, const std::string& path, const FileFingerprint& input, const std::string& input_path,
                 size_t num_lines) {
  const std::string manifest_path = manifest_path_for(path);
  if (!fs::exists(manifest_path))
    throw InputError(fmt::format("shard {} ({}): no manifest {}: the shard did not finish; rerun it (generate "
                                 "--resume finishes what it started)",
                                 index, path, manifest_path));
  Shard shard{path, read_manifest(manifest_path), read_record_file(path)};
  const ShardManifest& m = shard.manifest;
  if (m.input != input || m.num_input_lines != num_lines)
    throw InputError(fmt::format("shard {} ({}) is from another input: its manifest names {} ({} bytes, {}, {} lines), "
                                 "--input {} is {} bytes, {}, {} lines",
                                 index, path, m.input_path, m.input.size_bytes, m.input.hash_text(), m.num_input_lines,
                                 input_path, input.size_bytes, input.hash_text(), num_lines));
  if (m.shard_index != index)
    throw InputError(fmt::format("shard {} ({}): its manifest says shard {}: a renamed file?", index, path,
                                 m.shard_index));
  if (shard.records.lines.size() != m.served_line_indices.size() || shard.records.file_bytes != m.output_size_bytes)
    throw InputError(fmt::format("shard {} ({}) is truncated or changed: {} complete records in {} bytes, its "
                                 "manifest lists {} lines in {} bytes",
                                 index, path, shard.records.lines.size(), shard.records.file_bytes,
                                 m.served_line_indices.size(), m.output_size_bytes));
  return shard;
}

}  // namespace

MergeSummary merge_shards(const std::string& input_path, const std::string& shard_pattern,
                          const std::string& output_path) {
  const FileFingerprint input_print = fingerprint_file(input_path);
  const BatchInput input = read_batch_file(input_path, RequestDefaults{});
  const size_t num_lines = input.lines.size();

  std::vector<Shard> shards;
  for (const auto& [index, path] : find_shard_files(shard_pattern))
    shards.push_back(load_shard(index, path, input_print, input_path, num_lines));
  const uint32_t num_shards = shards.front().manifest.num_shards;
  for (const Shard& shard : shards) {
    if (shard.manifest.num_shards != num_shards)
      throw InputError(fmt::format("shard {} ({}) was one of {} shards, shard {} ({}) one of {}: runs of different "
                                   "--num-shards are mixed",
                                   shard.manifest.shard_index, shard.path, shard.manifest.num_shards,
                                   shards.front().manifest.shard_index, shards.front().path, num_shards));
    if (shard.manifest.format != input.format)
      throw InputError(fmt::format("shard {} ({}) holds {} records, the input is in {} format",
                                   shard.manifest.shard_index, shard.path, to_string(shard.manifest.format),
                                   to_string(input.format)));
  }
  for (uint32_t index = 0, k = 0; index < num_shards; ++index) {
    if (k < shards.size() && shards[k].manifest.shard_index == index) {
      ++k;
      continue;
    }
    throw InputError(fmt::format("shard {} of {} is missing: no {}", index, num_shards,
                                 shard_path(shard_pattern, index)));
  }
  if (shards.size() > num_shards)
    throw InputError(fmt::format("shard {} ({}) is beyond the {} shards the others name",
                                 shards.back().manifest.shard_index, shards.back().path, num_shards));

  // Which shard's which record answers each line.
  struct Source {
    const Shard* shard = nullptr;
    size_t record = 0;
  };
  std::vector<Source> sources(num_lines);
  const auto describe_line = [&](size_t i) {
    return fmt::format("line index {} (input line {}, id {})", i, input.lines[i].line_number, input.lines[i].id.dump());
  };
  for (const Shard& shard : shards) {
    const auto& served = shard.manifest.served_line_indices;
    for (size_t k = 0; k < served.size(); ++k) {
      const size_t i = served[k];
      if (i >= num_lines)
        throw InputError(fmt::format("shard {} ({}) served line index {}, the input has {} lines",
                                     shard.manifest.shard_index, shard.path, i, num_lines));
      if (sources[i].shard != nullptr)
        throw InputError(fmt::format("{} served twice: by shard {} ({}) and shard {} ({})", describe_line(i),
                                     sources[i].shard->manifest.shard_index, sources[i].shard->path,
                                     shard.manifest.shard_index, shard.path));
      const nlohmann::json record = nlohmann::json::parse(shard.records.lines[k], nullptr, false);
      if (record_id(input.format, record) != input.lines[i].id)
        throw InputError(fmt::format("shard {} ({}): record {} should answer {}, found {}", shard.manifest.shard_index,
                                     shard.path, k + 1, describe_line(i),
                                     record.is_discarded() ? "a line that is not JSON" : "id " + record_id(input.format, record).dump()));
      sources[i] = {&shard, k};
    }
  }
  for (size_t i = 0; i < num_lines; ++i)
    if (sources[i].shard == nullptr)
      throw InputError(fmt::format("{} was served by no shard", describe_line(i)));

  MergeSummary summary{num_lines, num_shards, 0, 0};
  for (const Shard& shard : shards) {
    summary.num_ok += shard.manifest.num_ok;
    summary.num_error += shard.manifest.num_error;
  }
  // Records are copied byte for byte: a merge never rewrites what a shard produced.
  OutputFile out(output_path, "--output");
  for (const Source& source : sources) {
    out.write(source.shard->records.lines[source.record]);
    out.write("\n");
  }
  out.commit();
  return summary;
}

}  // namespace prunekv
