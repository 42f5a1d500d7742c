#include "model/tokenizer.h"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <fstream>
#include <iterator>
#include <queue>

#include "common/check.h"
#include "common/error.h"

namespace prunekv {
namespace {

struct Llama2cVocab {
  std::vector<std::string> pieces;
  std::vector<float> scores;
};

std::vector<char> read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FormatError(fmt::format("{}: cannot open tokenizer file", path));
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// llama2.c tokenizer.bin: int32 max_token_length, then per token: float32 score, int32 len,
// len bytes (no NUL). The file does not store the count; it is whatever fills the file.
Llama2cVocab parse_llama2c_vocab(const std::string& path) {
  const std::vector<char> bytes = read_whole_file(path);
  size_t pos = 0;
  auto read_bytes = [&](void* out, size_t n, const char* what, size_t entry) {
    if (bytes.size() - pos < n)
      throw FormatError(fmt::format("{}: truncated in {} of entry {}: need {} bytes at offset {}, file has {}",
                                    path, what, entry, n, pos, bytes.size()));
    std::memcpy(out, bytes.data() + pos, n);
    pos += n;
  };
  int32_t max_token_length = 0;
  read_bytes(&max_token_length, sizeof max_token_length, "header max_token_length", 0);
  if (max_token_length <= 0 || max_token_length > (1 << 16))
    throw FormatError(fmt::format("{}: field max_token_length = {} must be in [1, 65536]", path, max_token_length));
  Llama2cVocab vocab;
  while (pos < bytes.size()) {
    const size_t entry = vocab.pieces.size();
    float score = 0;
    int32_t len = 0;
    read_bytes(&score, sizeof score, "score", entry);
    read_bytes(&len, sizeof len, "length", entry);
    if (len < 0 || len > max_token_length)
      throw FormatError(fmt::format("{}: entry {} has length {}, expected 0..max_token_length = {}", path, entry,
                                    len, max_token_length));
    std::string piece(static_cast<size_t>(len), '\0');
    read_bytes(piece.data(), piece.size(), "piece bytes", entry);
    vocab.pieces.push_back(std::move(piece));
    vocab.scores.push_back(score);
  }
  return vocab;
}

// "<0xNN>" -> the byte NN; -1 for any other piece.
int parse_byte_piece(std::string_view piece) {
  if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>') return -1;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(piece[3]), lo = hex(piece[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

}  // namespace

TokenId Tokenizer::find_byte_fallback_offset(const std::vector<std::string>& pieces) {
  for (size_t i = 0; i + 256 <= pieces.size(); ++i) {
    if (pieces[i] != "<0x00>") continue;
    for (int b = 0; b < 256; ++b)
      if (parse_byte_piece(pieces[i + static_cast<size_t>(b)]) != b) return -1;
    return static_cast<TokenId>(i);
  }
  return -1;
}

Tokenizer::Tokenizer(std::vector<std::string> pieces, std::vector<float> scores, TokenId bos_id, TokenId eos_id,
                     TokenId byte_fallback_offset)
    : pieces_(std::move(pieces)),
      scores_(std::move(scores)),
      bos_id_(bos_id),
      eos_id_(eos_id),
      byte_fallback_offset_(byte_fallback_offset) {
  const auto n = static_cast<TokenId>(pieces_.size());
  PKV_CHECK(pieces_.size() == scores_.size(), "{} pieces but {} scores", pieces_.size(), scores_.size());
  PKV_CHECK(bos_id_ >= 0 && bos_id_ < n && eos_id_ >= 0 && eos_id_ < n, "bos {} / eos {} outside vocab {}", bos_id_,
            eos_id_, n);
  PKV_CHECK(byte_fallback_offset_ == -1 || (byte_fallback_offset_ >= 0 && byte_fallback_offset_ + 256 <= n),
            "byte fallback offset {} with vocab {}", byte_fallback_offset_, n);
  index_.reserve(pieces_.size());
  // A piece listed twice keeps its lowest id.
  for (TokenId id = 0; id < n; ++id) index_.emplace(pieces_[static_cast<size_t>(id)], id);
  if (auto it = index_.find(" "); it != index_.end()) dummy_prefix_id_ = it->second;
  // A merged token's piece is the text it covers; a byte token's piece (<0x41>) is longer than its byte.
  for (const auto& piece : pieces_) max_token_bytes_ = std::max(max_token_bytes_, piece.size());
}

Tokenizer Tokenizer::from_llama2c_file(const std::string& path, uint32_t vocab_size) {
  Llama2cVocab vocab = parse_llama2c_vocab(path);
  if (vocab.pieces.size() != vocab_size)
    throw FormatError(fmt::format("{}: tokenizer holds {} entries, expected the model's vocab_size = {}", path,
                                  vocab.pieces.size(), vocab_size));
  // llama2.c hard-codes BOS = 1 and EOS = 2 (run.c).
  if (vocab_size < 3)
    throw FormatError(fmt::format("{}: tokenizer holds {} entries, expected at least 3 (unk, BOS, EOS)", path, vocab_size));
  const TokenId byte_offset = find_byte_fallback_offset(vocab.pieces);
  return Tokenizer(std::move(vocab.pieces), std::move(vocab.scores), 1, 2, byte_offset);
}

size_t Tokenizer::llama2c_file_vocab_size(const std::string& path) { return parse_llama2c_vocab(path).pieces.size(); }

void Tokenizer::append_char_tokens(std::string_view utf8_char, std::vector<TokenId>& tokens) const {
  if (auto it = index_.find(std::string(utf8_char)); it != index_.end()) {
    tokens.push_back(it->second);
    return;
  }
  // Byte fallback, as run.c: one token per byte, id = byte + offset (<0x00> is id 3 in llama).
  for (const char c : utf8_char)
    tokens.push_back(byte_fallback_offset_ >= 0 ? byte_fallback_offset_ + static_cast<unsigned char>(c) : 0);
}

// Equivalent to run.c's loop (each round merges the best-scoring adjacent pair, the leftmost on
// ties, and stops when no pair is in the vocabulary), but O(n log n): a heap of candidate pairs
// over a linked list of tokens. A candidate is stale once either side changed (versions).
void Tokenizer::merge_pairs(std::vector<TokenId>& tokens) const {
  const int n = static_cast<int>(tokens.size());
  if (n < 2) return;
  std::vector<int> prev(static_cast<size_t>(n)), next(static_cast<size_t>(n));
  std::vector<uint32_t> version(static_cast<size_t>(n), 0);
  std::vector<bool> alive(static_cast<size_t>(n), true);
  for (int i = 0; i < n; ++i) {
    prev[static_cast<size_t>(i)] = i - 1;
    next[static_cast<size_t>(i)] = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    float score;
    int left, right;
    uint32_t left_version, right_version;
    TokenId merged;
  };
  // Top = highest score, then the smallest left index: node indices keep text order.
  auto worse = [](const Candidate& a, const Candidate& b) {
    return a.score != b.score ? a.score < b.score : a.left > b.left;
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(worse)> heap(worse);
  std::string joined;
  auto push_pair = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    joined = pieces_[static_cast<size_t>(tokens[static_cast<size_t>(left)])];
    joined += pieces_[static_cast<size_t>(tokens[static_cast<size_t>(right)])];
    auto it = index_.find(joined);
    if (it == index_.end()) return;
    const float score = scores_[static_cast<size_t>(it->second)];
    if (!(score > -1e10f)) return;  // run.c starts its search at best_score = -1e10
    heap.push({score, left, right, version[static_cast<size_t>(left)], version[static_cast<size_t>(right)], it->second});
  };
  for (int i = 0; i + 1 < n; ++i) push_pair(i, i + 1);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    const auto l = static_cast<size_t>(c.left), r = static_cast<size_t>(c.right);
    if (!alive[l] || !alive[r] || next[l] != c.right || version[l] != c.left_version || version[r] != c.right_version)
      continue;
    tokens[l] = c.merged;
    ++version[l];
    alive[r] = false;
    next[l] = next[r];
    if (next[r] >= 0) prev[static_cast<size_t>(next[r])] = c.left;
    push_pair(prev[l], c.left);
    push_pair(c.left, next[l]);
  }
  size_t out = 0;
  for (int i = 0; i >= 0; i = next[static_cast<size_t>(i)]) tokens[out++] = tokens[static_cast<size_t>(i)];
  tokens.resize(out);
}

// Matches llama2.c run.c encode(): BOS, the dummy-prefix " " for non-empty text, one token per
// UTF-8 character (or its bytes), then pair merges.
void Tokenizer::set_special_tokens(std::span<const TokenId> ids) {
  special_ids_.clear();
  special_by_first_byte_.clear();
  for (const TokenId id : ids) {
    PKV_CHECK(id >= 0 && static_cast<size_t>(id) < pieces_.size(), "special token {} outside vocab {}", id,
              pieces_.size());
    if (pieces_[static_cast<size_t>(id)].empty()) continue;  // no text to find
    special_ids_.push_back(id);
    special_by_first_byte_[pieces_[static_cast<size_t>(id)][0]].push_back(id);
  }
  for (auto& [byte, candidates] : special_by_first_byte_)
    std::stable_sort(candidates.begin(), candidates.end(), [&](TokenId a, TokenId b) {
      return pieces_[static_cast<size_t>(a)].size() > pieces_[static_cast<size_t>(b)].size();
    });
}

TokenId Tokenizer::special_token_at(std::string_view text, size_t pos) const {
  const auto it = special_by_first_byte_.find(text[pos]);
  if (it == special_by_first_byte_.end()) return -1;
  for (const TokenId id : it->second)
    if (text.substr(pos).starts_with(pieces_[static_cast<size_t>(id)])) return id;
  return -1;
}

void Tokenizer::append_text_tokens(std::string_view text, std::vector<TokenId>& tokens) const {
  if (text.empty()) return;
  std::vector<TokenId> stretch;
  stretch.reserve(text.size() + 1);
  if (dummy_prefix_id_ >= 0)
    stretch.push_back(dummy_prefix_id_);
  else
    append_char_tokens(" ", stretch);
  auto is_continuation = [](char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; };
  size_t begin = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (!is_continuation(text[i])) begin = i;
    const size_t len = i - begin + 1;
    // run.c keeps collecting continuation bytes up to 4 bytes, then looks the character up.
    if (i + 1 < text.size() && is_continuation(text[i + 1]) && len < 4) continue;
    append_char_tokens(text.substr(begin, len), stretch);
    begin = i + 1;
  }
  merge_pairs(stretch);
  tokens.insert(tokens.end(), stretch.begin(), stretch.end());
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool add_bos, bool parse_special) const {
  std::vector<TokenId> tokens;
  tokens.reserve(text.size() + 2);
  if (!parse_special || special_ids_.empty()) {
    if (add_bos) tokens.push_back(bos_id_);
    append_text_tokens(text, tokens);
    return tokens;
  }
  size_t stretch_begin = 0;
  for (size_t pos = 0; pos < text.size();) {
    const TokenId special = special_token_at(text, pos);
    if (special < 0) {
      ++pos;
      continue;
    }
    append_text_tokens(text.substr(stretch_begin, pos - stretch_begin), tokens);
    tokens.push_back(special);
    pos += pieces_[static_cast<size_t>(special)].size();
    stretch_begin = pos;
  }
  append_text_tokens(text.substr(stretch_begin), tokens);
  if (add_bos && (tokens.empty() || tokens.front() != bos_id_)) tokens.insert(tokens.begin(), bos_id_);
  return tokens;
}

std::optional<std::vector<TokenId>> Tokenizer::encode_at_most(std::string_view text, bool add_bos,
                                                               size_t max_tokens, bool parse_special) const {
  if (text.size() > max_tokens * max_token_bytes_) return std::nullopt;
  std::vector<TokenId> tokens = encode(text, add_bos, parse_special);
  if (tokens.size() > max_tokens) return std::nullopt;
  return tokens;
}

std::string Tokenizer::decode(TokenId prev, TokenId token) const {
  PKV_CHECK(token >= 0 && static_cast<size_t>(token) < pieces_.size(), "token {} outside vocab {}", token,
            pieces_.size());
  std::string_view piece = pieces_[static_cast<size_t>(token)];
  if (prev == bos_id_ && !piece.empty() && piece[0] == ' ') piece.remove_prefix(1);
  if (const int byte = parse_byte_piece(piece); byte >= 0) return std::string(1, static_cast<char>(byte));
  return std::string(piece);
}

std::string Tokenizer::decode(std::span<const TokenId> tokens, TokenId prev) const {
  std::string text;
  for (const TokenId token : tokens) {
    text += decode(prev, token);
    prev = token;
  }
  return text;
}

}  // namespace prunekv
