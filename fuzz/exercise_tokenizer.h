#pragma once
// What a loaded tokenizer must survive whatever file it came from: encoding any bytes (the
// fuzz input's tail, so the fuzzer steers the text too) and decoding every id it can return.
#include <algorithm>
#include <cstdint>
#include <string_view>

#include "model/tokenizer.h"

namespace prunekv::fuzz {

inline void exercise_tokenizer(const Tokenizer& tokenizer, const uint8_t* data, size_t size) {
  const size_t text_bytes = std::min<size_t>(size, 64);
  const std::string_view tail(reinterpret_cast<const char*>(data + size - text_bytes), text_bytes);
  for (const std::string_view text :
       {tail, std::string_view("Once upon a time, \xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80")}) {
    const auto tokens = tokenizer.encode(text, /*add_bos=*/true);
    (void)tokenizer.decode(tokens, tokenizer.bos_id());
    (void)tokenizer.encode_at_most(text, /*add_bos=*/false, 8);
  }
  // Every id (up to 4096), after BOS (the leading-space rule) and after another token.
  const auto vocab = static_cast<TokenId>(std::min<size_t>(tokenizer.vocab_size(), 4096));
  for (TokenId id = 0; id < vocab; ++id) {
    (void)tokenizer.decode(tokenizer.bos_id(), id);
    (void)tokenizer.decode(tokenizer.eos_id(), id);
  }
}

}  // namespace prunekv::fuzz
