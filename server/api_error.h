#pragma once
// An HTTP error answer in OpenAI's shape: {"error": {"message", "type", "param", "code"}}.
// Thrown by request parsing and routing, caught once per HTTP request by the server.
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace prunekv::server {

class ApiError : public std::runtime_error {
 public:
  // `param` names the offending request field ("" when none); `type` is OpenAI's error type.
  ApiError(int status, std::string message, std::string param = {}, std::string type = {});

  int status() const { return status_; }
  const std::string& param() const { return param_; }
  nlohmann::json body() const;

 private:
  int status_;
  std::string param_;
  std::string type_;
};

}  // namespace prunekv::server
