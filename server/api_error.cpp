#include "server/api_error.h"

namespace prunekv::server {
namespace {

std::string default_type(int status) {
  if (status == 404) return "not_found_error";
  if (status == 503) return "service_unavailable";
  if (status >= 500) return "internal_error";
  return "invalid_request_error";
}

}  // namespace

ApiError::ApiError(int status, std::string message, std::string param, std::string type)
    : std::runtime_error(std::move(message)),
      status_(status),
      param_(std::move(param)),
      type_(type.empty() ? default_type(status) : std::move(type)) {}

nlohmann::json ApiError::body() const {
  nlohmann::json error = {{"message", what()}, {"type", type_}, {"code", status_}};
  error["param"] = param_.empty() ? nlohmann::json() : nlohmann::json(param_);
  return {{"error", std::move(error)}};
}

}  // namespace prunekv::server
