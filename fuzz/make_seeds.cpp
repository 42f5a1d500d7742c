// Writes the binary seeds of fuzz/corpus/ (committed; rerun only to change them):
//   cmake --build build/release --target make_fuzz_seeds
//   build/release/tests/make_fuzz_seeds ../shared/models fuzz/corpus
// Seeds are small: a real file's header or prefix, or a tiny valid file written by our own
// GGUF writer, so the fuzzers start from inputs that get past the first checks.
#include <fmt/format.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include "model/gguf_reader.h"
#include "tests/testing/gguf_writer.h"

namespace fs = std::filesystem;
using prunekv::testing::read_bytes;
using prunekv::testing::write_bytes;

namespace {

// A file of ../shared/models, which must be there (read_bytes returns nothing for a missing one).
std::vector<uint8_t> read_real(const fs::path& path) {
  auto bytes = read_bytes(path);
  if (bytes.empty()) throw std::runtime_error(fmt::format("{}: missing or empty", path.string()));
  return bytes;
}

std::vector<uint8_t> prefix(const std::vector<uint8_t>& bytes, size_t size) {
  return {bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(std::min(size, bytes.size()))};
}

// The real GGUF cut where its tensor data begins: all of its metadata and tensor table.
std::vector<uint8_t> gguf_header(const fs::path& path) {
  const prunekv::GgufReader reader(prunekv::MappedFile::open(path.string()));
  size_t data_start = reader.file()->size();
  for (const auto& t : reader.tensors())
    data_start = std::min(data_start, static_cast<size_t>(t.data - reader.file()->data()));
  return prefix(read_real(path), data_start);
}

prunekv::ModelConfig tiny_config(uint32_t vocab_size) {
  prunekv::ModelConfig c;
  c.dim = 8;
  c.hidden_dim = 12;
  c.num_layers = 1;
  c.num_heads = 2;
  c.num_kv_heads = 1;
  c.vocab_size = vocab_size;
  c.context_length = 16;
  return c;
}

// run.c's layout for tiny_config(): header, then every tensor (values i * 1e-3).
std::vector<uint8_t> tiny_llama2c(uint32_t vocab_size, bool separate_classifier) {
  prunekv::ModelConfig c = tiny_config(vocab_size);
  c.tied_classifier = !separate_classifier;
  const size_t floats = c.num_weight_params() + c.context_length * c.head_dim();
  const int32_t vocab_field =
      separate_classifier ? -static_cast<int32_t>(vocab_size) : static_cast<int32_t>(vocab_size);
  const int32_t header[7] = {static_cast<int32_t>(c.dim),           static_cast<int32_t>(c.hidden_dim),
                             static_cast<int32_t>(c.num_layers),    static_cast<int32_t>(c.num_heads),
                             static_cast<int32_t>(c.num_kv_heads),  vocab_field,
                             static_cast<int32_t>(c.context_length)};
  std::vector<uint8_t> bytes(sizeof header + floats * sizeof(float));
  std::memcpy(bytes.data(), header, sizeof header);
  for (size_t i = 0; i < floats; ++i) {
    const float v = static_cast<float>(i) * 1e-3f;
    std::memcpy(bytes.data() + sizeof header + i * sizeof(float), &v, sizeof v);
  }
  return bytes;
}

// The first `entries` entries of a llama2.c tokenizer.bin (itself a valid tokenizer file).
std::vector<uint8_t> tokenizer_prefix(const std::vector<uint8_t>& bytes, size_t entries) {
  size_t pos = 4;
  for (size_t i = 0; i < entries && pos + 8 <= bytes.size(); ++i) {
    int32_t len = 0;
    std::memcpy(&len, bytes.data() + pos + 4, sizeof len);
    pos += 8 + static_cast<size_t>(len);
  }
  return prefix(bytes, pos);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s SHARED_MODELS_DIR CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const fs::path models = argv[1], corpus = argv[2];
  try {
    write_bytes(corpus / "gguf/stories260K-f32-header.gguf", gguf_header(models / "stories260K-f32.gguf"));
    write_bytes(corpus / "gguf/tiny-llama.gguf", prunekv::testing::make_llama_gguf(tiny_config(262)).bytes());
    auto untied = prunekv::testing::make_llama_gguf(tiny_config(8));  // no vocabulary, own classifier
    untied.add_tensor_f16("output.weight", {8, 8}, std::vector<float>(64, 0.5f));
    write_bytes(corpus / "gguf/tiny-untied-novocab.gguf", untied.bytes());

    write_bytes(corpus / "llama2c/tiny.bin", tiny_llama2c(5, false));
    write_bytes(corpus / "llama2c/tiny-classifier.bin", tiny_llama2c(5, true));
    write_bytes(corpus / "llama2c/stories260K-prefix.bin",
                prefix(read_real(models / "stories260K.bin"), 256));

    const auto tok512 = read_real(models / "tok512.bin");
    write_bytes(corpus / "tokenizer/tok512-first300.bin", tokenizer_prefix(tok512, 300));
    write_bytes(corpus / "tokenizer/tok512-first8.bin", tokenizer_prefix(tok512, 8));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_fuzz_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
