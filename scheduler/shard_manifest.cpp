#include "scheduler/shard_manifest.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/output_file.h"

namespace prunekv {
namespace {

using nlohmann::json;

constexpr int kManifestVersion = 1;

template <typename T>
T field(const json& object, const char* name, const std::string& path) {
  try {
    return object.at(name).get<T>();
  } catch (const json::exception& e) {
    throw InputError(fmt::format("manifest {}: field \"{}\": {}", path, name, e.what()));
  }
}

}  // namespace

std::string manifest_path_for(const std::string& output_path) { return output_path + ".manifest.json"; }

void write_manifest(const std::string& path, const ShardManifest& m) {
  const nlohmann::ordered_json manifest{
      {"manifest_version", kManifestVersion},
      {"input", {{"path", m.input_path}, {"size_bytes", m.input.size_bytes}, {"hash", m.input.hash_text()}}},
      {"num_input_lines", m.num_input_lines},
      {"format", std::string(to_string(m.format))},
      {"num_shards", m.num_shards},
      {"shard_index", m.shard_index},
      {"shard_source", m.shard_source},
      {"output", {{"path", m.output_path}, {"size_bytes", m.output_size_bytes}}},
      {"served_line_indices", m.served_line_indices},
      {"num_ok", m.num_ok},
      {"num_error", m.num_error},
      {"num_resumed", m.num_resumed}};
  write_output_file(path, "shard manifest", manifest.dump() + '\n');
}

ShardManifest read_manifest(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(fmt::format("cannot open the manifest \"{}\"", path));
  const json object = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!object.is_object())
    throw InputError(fmt::format("manifest {}: expected a JSON object (a partial or foreign file?)", path));
  if (field<int>(object, "manifest_version", path) != kManifestVersion)
    throw InputError(fmt::format("manifest {}: manifest_version {}, expected {}", path, object["manifest_version"].dump(),
                                 kManifestVersion));
  ShardManifest m;
  const json input = field<json>(object, "input", path);
  m.input_path = field<std::string>(input, "path", path);
  m.input.size_bytes = field<uint64_t>(input, "size_bytes", path);
  const auto hash = field<std::string>(input, "hash", path);
  constexpr std::string_view kPrefix = "fnv1a64:";
  try {
    if (hash.rfind(kPrefix, 0) != 0 || hash.size() != kPrefix.size() + 16) throw std::invalid_argument(hash);
    m.input.fnv1a64 = std::stoull(hash.substr(kPrefix.size()), nullptr, 16);
  } catch (const std::exception&) {
    throw InputError(fmt::format("manifest {}: field \"input.hash\": expected \"fnv1a64:\" and 16 hex digits, found \"{}\"",
                                 path, hash));
  }
  m.num_input_lines = field<size_t>(object, "num_input_lines", path);
  m.format = batch_format_from_string(field<std::string>(object, "format", path));
  m.num_shards = field<uint32_t>(object, "num_shards", path);
  m.shard_index = field<uint32_t>(object, "shard_index", path);
  m.shard_source = field<std::string>(object, "shard_source", path);
  const json output = field<json>(object, "output", path);
  m.output_path = field<std::string>(output, "path", path);
  m.output_size_bytes = field<uint64_t>(output, "size_bytes", path);
  m.served_line_indices = field<std::vector<size_t>>(object, "served_line_indices", path);
  m.num_ok = field<size_t>(object, "num_ok", path);
  m.num_error = field<size_t>(object, "num_error", path);
  m.num_resumed = field<size_t>(object, "num_resumed", path);
  return m;
}

}  // namespace prunekv
