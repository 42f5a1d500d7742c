#include "server/stream_text.h"

#include <algorithm>

namespace prunekv::server {

size_t complete_utf8_prefix(std::string_view text) {
  // Walk back over at most 3 continuation bytes to the last lead byte.
  size_t i = text.size();
  size_t continuation = 0;
  while (i > 0 && continuation < 4 && (static_cast<unsigned char>(text[i - 1]) & 0xC0) == 0x80) {
    --i;
    ++continuation;
  }
  if (i == 0) return text.size();  // only continuation bytes: nothing to wait for
  const auto lead = static_cast<unsigned char>(text[i - 1]);
  size_t need = 0;
  if ((lead & 0xE0) == 0xC0) need = 1;
  else if ((lead & 0xF0) == 0xE0) need = 2;
  else if ((lead & 0xF8) == 0xF0) need = 3;
  else return text.size();  // ASCII or an invalid lead: nothing to wait for
  return continuation < need ? i - 1 : text.size();
}

size_t sendable_text_end(std::string_view text, size_t sent, size_t max_stop_bytes, bool finished) {
  if (finished) return std::max(sent, text.size());
  const size_t hold = max_stop_bytes > 0 ? max_stop_bytes - 1 : 0;
  const size_t end = text.size() > hold ? text.size() - hold : 0;
  return std::max(sent, complete_utf8_prefix(text.substr(0, end)));
}

}  // namespace prunekv::server
