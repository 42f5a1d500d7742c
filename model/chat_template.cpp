#include "model/chat_template.h"

#include <array>
#include <utility>

namespace prunekv {
namespace {

constexpr std::array<std::pair<std::string_view, ChatFormat>, 7> kNames{{{"chatml", ChatFormat::kChatml},
                                                                         {"llama2", ChatFormat::kLlama2},
                                                                         {"mistral", ChatFormat::kMistral},
                                                                         {"llama3", ChatFormat::kLlama3},
                                                                         {"zephyr", ChatFormat::kZephyr},
                                                                         {"gemma", ChatFormat::kGemma},
                                                                         {"phi3", ChatFormat::kPhi3}}};

std::string_view trim(std::string_view text) {
  constexpr std::string_view kSpace = " \t\n\r\f\v";
  const size_t first = text.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(kSpace) - first + 1);
}

// `<|role|>\ncontent END\n` per message, the shape chatml, zephyr and phi3 share.
std::string render_tagged(std::span<const ChatMessage> messages, std::string_view open, std::string_view close,
                          std::string_view end, bool add_generation_prompt) {
  std::string out;
  for (const ChatMessage& m : messages) {
    out.append(open).append(m.role).append(close).append("\n").append(m.content).append(end).append("\n");
  }
  if (add_generation_prompt) out.append(open).append("assistant").append(close).append("\n");
  return out;
}

// [INST] turns. Meta's Llama 2 wraps a system message in <<SYS>> inside the turn and pads the
// answer with spaces; Mistral's has no system slot (its text opens the user turn) and no padding.
std::string render_inst(std::span<const ChatMessage> messages, bool llama2) {
  std::string out;
  bool in_turn = false;
  bool first_turn = true;
  for (const ChatMessage& m : messages) {
    const std::string_view content = llama2 ? trim(m.content) : std::string_view(m.content);
    if (!in_turn && m.role != "assistant") {
      if (!first_turn && llama2) out += "<s>";
      out += "[INST] ";
      in_turn = true;
      first_turn = false;
    }
    if (m.role == "system") {
      if (llama2) {
        out.append("<<SYS>>\n").append(content).append("\n<</SYS>>\n\n");
      } else {
        out.append(content).append("\n\n");
      }
    } else if (m.role == "user") {
      out.append(content).append(" [/INST]");
    } else {
      if (llama2) {
        out.append(" ").append(content).append(" </s>");
      } else {
        out.append(content).append("</s>");
      }
      in_turn = false;
    }
  }
  return out;
}

// Gemma: "model" for the assistant, no system turn (its text opens the next user turn), trimmed.
std::string render_gemma(std::span<const ChatMessage> messages, bool add_generation_prompt) {
  std::string out;
  std::string system;
  for (const ChatMessage& m : messages) {
    if (m.role == "system") {
      system.append(trim(m.content));
      continue;
    }
    const bool user = m.role == "user";
    out.append("<start_of_turn>").append(user ? "user" : "model").append("\n");
    if (user && !system.empty()) {
      out.append(system).append("\n\n");
      system.clear();
    }
    out.append(trim(m.content)).append("<end_of_turn>\n");
  }
  if (add_generation_prompt) out += "<start_of_turn>model\n";
  return out;
}

std::string render_llama3(std::span<const ChatMessage> messages, bool add_generation_prompt) {
  std::string out;
  for (const ChatMessage& m : messages)
    out.append("<|start_header_id|>").append(m.role).append("<|end_header_id|>\n\n").append(trim(m.content)).append("<|eot_id|>");
  if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

}  // namespace

std::optional<ChatFormat> detect_chat_format(std::string_view text) {
  for (const auto& [name, format] : kNames)
    if (text == name) return format;
  const auto has = [&](std::string_view marker) { return text.find(marker) != std::string_view::npos; };
  // Most specific markers first: phi3 and zephyr share <|assistant|>; only phi3 ends turns with <|end|>.
  if (has("<|im_start|>")) return ChatFormat::kChatml;
  if (has("[INST]")) return has("<<SYS>>") ? ChatFormat::kLlama2 : ChatFormat::kMistral;
  if (has("<|assistant|>") && has("<|end|>")) return ChatFormat::kPhi3;
  if (has("<|assistant|>") && has("<|user|>")) return ChatFormat::kZephyr;
  if (has("<start_of_turn>")) return ChatFormat::kGemma;
  if (has("<|start_header_id|>") && has("<|end_header_id|>")) return ChatFormat::kLlama3;
  return std::nullopt;
}

std::string_view chat_format_name(ChatFormat format) {
  for (const auto& [name, f] : kNames)
    if (f == format) return name;
  return "unknown";
}

bool is_chat_role(std::string_view role) { return role == "system" || role == "user" || role == "assistant"; }

std::string render_chat(ChatFormat format, std::span<const ChatMessage> messages, bool add_generation_prompt) {
  switch (format) {
    case ChatFormat::kChatml:
      return render_tagged(messages, "<|im_start|>", "", "<|im_end|>", add_generation_prompt);
    case ChatFormat::kLlama2:
      return render_inst(messages, true);
    case ChatFormat::kMistral:
      return render_inst(messages, false);
    case ChatFormat::kLlama3:
      return render_llama3(messages, add_generation_prompt);
    case ChatFormat::kZephyr:
      return render_tagged(messages, "<|", "|>", "</s>", add_generation_prompt);
    case ChatFormat::kGemma:
      return render_gemma(messages, add_generation_prompt);
    case ChatFormat::kPhi3:
      return render_tagged(messages, "<|", "|>", "<|end|>", add_generation_prompt);
  }
  return {};
}

}  // namespace prunekv
