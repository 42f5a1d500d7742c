#include "server/completion_response.h"

namespace prunekv::server {

using nlohmann::json;

std::string_view finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "abort";
    case FinishReason::kError: return "error";
  }
  return "error";
}

json prunekv_field(const RequestOutput& output) {
  return {{"kv_kept_fraction", output.kv_kept_fraction},
          {"kv_kept_block_fraction", output.kv_kept_block_fraction},
          {"blocks_freed_by_pruning", output.blocks_freed_by_pruning},
          {"blocks_freed_by_generated_pruning", output.blocks_freed_by_generated_pruning},
          {"num_preemptions", output.num_preemptions}};
}

json usage_field(const RequestOutput& output) {
  const size_t completion = output.output_tokens.size();
  return {{"prompt_tokens", output.num_prompt_tokens},
          {"completion_tokens", completion},
          {"total_tokens", output.num_prompt_tokens + completion}};
}

namespace {

json envelope(const CompletionIds& ids, bool chunk) {
  const std::string_view object = !ids.chat ? "text_completion" : chunk ? "chat.completion.chunk" : "chat.completion";
  return {{"id", ids.id}, {"object", object}, {"created", ids.created}, {"model", ids.model}};
}

json choice(const CompletionIds& ids, bool chunk, std::string_view text, std::span<const TokenId> tokens,
            bool token_ids, const RequestOutput* finished) {
  json c = {{"index", 0}};
  if (!ids.chat) {
    c["text"] = text;
  } else if (chunk) {
    c["delta"] = {{"content", text}};
  } else {
    c["message"] = {{"role", "assistant"}, {"content", text}};
  }
  c["logprobs"] = nullptr;
  c["finish_reason"] = finished != nullptr ? json(finish_reason_name(finished->finish_reason)) : json();
  if (token_ids) c["token_ids"] = std::vector<TokenId>(tokens.begin(), tokens.end());
  return c;
}

std::string event(const json& body) { return "data: " + dump_json(body) + "\n\n"; }

}  // namespace

std::string dump_json(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

json completion_body(const CompletionIds& ids, const RequestOutput& output, bool token_ids) {
  json body = envelope(ids, false);
  body["choices"] = json::array({choice(ids, false, output.text, output.output_tokens, token_ids, &output)});
  body["usage"] = usage_field(output);
  body["prunekv"] = prunekv_field(output);
  return body;
}

std::string completion_chunk(const CompletionIds& ids, std::string_view text, std::span<const TokenId> tokens,
                             bool token_ids, const RequestOutput* finished_output) {
  json body = envelope(ids, true);
  body["choices"] = json::array({choice(ids, true, text, tokens, token_ids, finished_output)});
  if (finished_output != nullptr) body["prunekv"] = prunekv_field(*finished_output);
  return event(body);
}

std::string chat_role_chunk(const CompletionIds& ids) {
  json body = envelope(ids, true);
  body["choices"] = json::array(
      {{{"index", 0}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"logprobs", nullptr}, {"finish_reason", nullptr}}});
  return event(body);
}

std::string usage_chunk(const CompletionIds& ids, const RequestOutput& output) {
  json body = envelope(ids, true);
  body["choices"] = json::array();
  body["usage"] = usage_field(output);
  return event(body);
}

}  // namespace prunekv::server
