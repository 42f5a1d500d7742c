#pragma once
// SentencePiece-style BPE over a scored vocabulary (llama2.c tokenizer.bin or a GGUF "llama"
// vocabulary): dummy-prefix space, greedy highest-score merges, byte fallback <0x00>..<0xFF>.
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/ids.h"

namespace prunekv {

class Tokenizer {
 public:
  // pieces use plain spaces (GGUF's U+2581 is converted by the loader). byte_fallback_offset is
  // the id of <0x00> (3 in llama vocabularies), or -1 when the vocabulary has no byte tokens.
  Tokenizer(std::vector<std::string> pieces, std::vector<float> scores, TokenId bos_id, TokenId eos_id,
            TokenId byte_fallback_offset);

  // Reads a llama2.c tokenizer.bin holding exactly vocab_size entries; throws FormatError.
  static Tokenizer from_llama2c_file(const std::string& path, uint32_t vocab_size);
  // The number of entries in a llama2.c tokenizer.bin (to find the one matching a model);
  // throws FormatError when the file is unreadable or malformed.
  static size_t llama2c_file_vocab_size(const std::string& path);
  // The id of "<0x00>" when "<0x00>".."<0xFF>" are 256 consecutive pieces (3 in llama), else -1.
  static TokenId find_byte_fallback_offset(const std::vector<std::string>& pieces);

  // The tokens whose text encode(..., parse_special = true) maps straight to their ids (GGUF's
  // CONTROL and USER_DEFINED token types: <s>, </s>, <|im_start|>, ...). A chat template writes
  // them as text; byte-pair encoding would spell them out character by character.
  void set_special_tokens(std::span<const TokenId> ids);
  size_t num_special_tokens() const { return special_ids_.size(); }

  // parse_special: every occurrence of a special token's text becomes its id (the longest where
  // several start at one place), and the text between them is encoded as usual, each stretch with
  // its dummy-prefix space as llama.cpp does. add_bos is not repeated when the text starts with BOS.
  std::vector<TokenId> encode(std::string_view text, bool add_bos, bool parse_special = false) const;
  // encode(), or nothing when the text has more than max_tokens tokens. A text longer than
  // max_tokens x the longest piece is refused before any work, so a 100 MB prompt costs no more
  // than one that barely fits the context.
  std::optional<std::vector<TokenId>> encode_at_most(std::string_view text, bool add_bos, size_t max_tokens,
                                                     bool parse_special = false) const;
  // The text one token adds after `prev` (llama2.c's decode: a leading space is dropped right
  // after BOS, byte tokens become their byte).
  std::string decode(TokenId prev, TokenId token) const;
  // Concatenated decode of a continuation; `prev` is the token before the first one.
  std::string decode(std::span<const TokenId> tokens, TokenId prev) const;

  size_t vocab_size() const { return pieces_.size(); }
  TokenId bos_id() const { return bos_id_; }
  TokenId eos_id() const { return eos_id_; }
  const std::string& piece(TokenId id) const { return pieces_.at(static_cast<size_t>(id)); }

 private:
  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::unordered_map<std::string, TokenId> index_;
  TokenId bos_id_;
  TokenId eos_id_;
  TokenId byte_fallback_offset_;
  TokenId dummy_prefix_id_ = -1;  // the piece " ", prepended to non-empty text (-1: none)
  size_t max_token_bytes_ = 4;    // text bytes one token covers at most: its piece's length (>= one UTF-8 char)

  // Special tokens by the first byte of their text, longest first: the candidates at a position.
  std::vector<TokenId> special_ids_;
  std::unordered_map<char, std::vector<TokenId>> special_by_first_byte_;

  // Appends the tokens of plain text (no BOS, no special tokens) to `tokens`.
  void append_text_tokens(std::string_view text, std::vector<TokenId>& tokens) const;
  // The special token whose text starts at text[pos] (the longest), or -1.
  TokenId special_token_at(std::string_view text, size_t pos) const;
  // Appends the ids of one UTF-8 character (1-4 bytes): its piece, or its bytes' fallback ids.
  void append_char_tokens(std::string_view utf8_char, std::vector<TokenId>& tokens) const;
  // Merges adjacent pairs, best score first and leftmost on ties, until no pair is a piece.
  void merge_pairs(std::vector<TokenId>& tokens) const;
};

}  // namespace prunekv
