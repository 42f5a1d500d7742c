#pragma once
// A model's chat template (GGUF metadata tokenizer.chat_template, a Jinja program) recognised by
// signature substrings of its text and rendered by hand, as llama.cpp's llama-chat does: Debian
// has no Jinja engine for C++, and the common templates are a handful of fixed turn formats.
// A template none of the signatures match is not guessed at: callers refuse the chat.
//
// The formats, for system S, user U, assistant A (BOS is the tokenizer's, never rendered):
//   chatml   <|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n   (+ <|im_start|>assistant\n)
//   llama2   [INST] <<SYS>>\nS\n<</SYS>>\n\nU [/INST] A </s><s>[INST] U2 [/INST]  (Meta's Llama 2 chat)
//   mistral  [INST] S\n\nU [/INST]A</s>[INST] U2 [/INST]  ([INST] without <<SYS>>: the system text
//            opens the first user turn)
//   llama3   <|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>  (contents trimmed)
//            (+ <|start_header_id|>assistant<|end_header_id|>\n\n)
//   zephyr   <|system|>\nS</s>\n<|user|>\nU</s>\n  (+ <|assistant|>\n)
//   gemma    <start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\nA<end_of_turn>\n  (trimmed;
//            no system turn: S opens the first user turn)  (+ <start_of_turn>model\n)
//   phi3     <|user|>\nU<|end|>\n  (+ <|assistant|>\n)
// The [INST] formats end each user turn with [/INST], which is already the cue to answer.
// Free functions, no state.
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace prunekv {

enum class ChatFormat { kChatml, kLlama2, kMistral, kLlama3, kZephyr, kGemma, kPhi3 };

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

// The format `template_text` is written for, by the markers it contains; nullopt when none fits.
// A bare format name ("chatml", "llama3", ...) names that format.
std::optional<ChatFormat> detect_chat_format(std::string_view template_text);

std::string_view chat_format_name(ChatFormat format);

// Whether `role` is one render_chat() accepts.
bool is_chat_role(std::string_view role);

// The prompt for `messages` (roles checked by the caller with is_chat_role()), ending with the
// assistant's cue when add_generation_prompt is set.
std::string render_chat(ChatFormat format, std::span<const ChatMessage> messages, bool add_generation_prompt);

}  // namespace prunekv
