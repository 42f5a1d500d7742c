#pragma once
// Bad external input (files, JSONL, flags, prompts) throws one of these; the CLI catches them at
// its boundary. Expected outcomes of normal operation (pool empty, cannot admit) are return
// values instead, and nothing throws inside a TBB body.
#include <stdexcept>
#include <string>

namespace prunekv {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A model, tokenizer or trace file whose bytes are not what the format says.
class FormatError : public Error {
 public:
  using Error::Error;
};

// A request, JSONL line or prompt that cannot be served.
class InputError : public Error {
 public:
  using Error::Error;
};

// Flags or configuration values that make no sense together.
class ConfigError : public Error {
 public:
  using Error::Error;
};

}  // namespace prunekv
