#pragma once
// Appending a sampled token to a request and deciding whether it ends there (internal, engine
// thread): a stop token (EOS/BOS per the model, unless ignore_eos; not added to the output),
// a stop string in the decoded text (the text is cut before it), max_tokens, or the last of the
// spec's forced tokens.
#include <optional>
#include <span>

#include "model/tokenizer.h"
#include "scheduler/request_state.h"

namespace prunekv::detail {

std::optional<FinishReason> append_token(Request& request, TokenId token, std::span<const TokenId> stop_tokens,
                                         const Tokenizer* tokenizer);

}  // namespace prunekv::detail
