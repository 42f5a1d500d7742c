#pragma once
// How much of a request's decoded text a stream may send before the request ends. Two things
// can still change the tail: a stop string completed by a later token cuts the text before it
// (so the last longest-stop - 1 bytes wait), and a byte-fallback token may leave a UTF-8
// character half written (its bytes wait for the rest).
#include <cstddef>
#include <string_view>

namespace prunekv::server {

// Length of the longest prefix of `text` that does not end inside a UTF-8 sequence.
size_t complete_utf8_prefix(std::string_view text);

// End of the part of `text` safe to send: the whole text once finished, else the text minus
// max_stop_bytes - 1 bytes and any half-written character. Never below `sent`.
size_t sendable_text_end(std::string_view text, size_t sent, size_t max_stop_bytes, bool finished);

}  // namespace prunekv::server
