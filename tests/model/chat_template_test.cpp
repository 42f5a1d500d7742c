#include "model/chat_template.h"

#include <gtest/gtest.h>

#include <vector>

namespace prunekv {
namespace {

// The conversation each format is rendered for: a system prompt, a user turn answered, a second
// user turn waiting for its answer.
const std::vector<ChatMessage> kChat = {
    {"system", "You are terse."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "Name a colour"}};

// Expected prompts written from each format's documentation (model cards / the vendors' prompt
// guides), not from the renderer.
TEST(ChatTemplate, ChatmlWrapsEachTurnInImStartImEnd) {
  EXPECT_EQ(render_chat(ChatFormat::kChatml, kChat, true),
            "<|im_start|>system\nYou are terse.<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello.<|im_end|>\n"
            "<|im_start|>user\nName a colour<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(render_chat(ChatFormat::kChatml, std::vector<ChatMessage>{{"user", "Hi"}}, false),
            "<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplate, Llama2PutsTheSystemPromptInSysTagsInsideTheFirstTurn) {
  EXPECT_EQ(render_chat(ChatFormat::kLlama2, kChat, true),
            "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Name a colour [/INST]");
}

TEST(ChatTemplate, MistralOpensTheFirstUserTurnWithTheSystemText) {
  EXPECT_EQ(render_chat(ChatFormat::kMistral, kChat, true),
            "[INST] You are terse.\n\nHi [/INST]Hello.</s>[INST] Name a colour [/INST]");
  EXPECT_EQ(render_chat(ChatFormat::kMistral, std::vector<ChatMessage>{{"user", "Hi"}}, true), "[INST] Hi [/INST]");
}

TEST(ChatTemplate, Llama3HeadersEachTurnAndTrimsContent) {
  const std::vector<ChatMessage> chat = {{"system", " You are terse. "}, {"user", "Hi\n"}};
  EXPECT_EQ(render_chat(ChatFormat::kLlama3, chat, true),
            "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, ZephyrEndsTurnsWithEos) {
  EXPECT_EQ(render_chat(ChatFormat::kZephyr, kChat, true),
            "<|system|>\nYou are terse.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello.</s>\n"
            "<|user|>\nName a colour</s>\n<|assistant|>\n");
}

TEST(ChatTemplate, GemmaHasNoSystemTurnAndCallsTheAssistantModel) {
  EXPECT_EQ(render_chat(ChatFormat::kGemma, kChat, true),
            "<start_of_turn>user\nYou are terse.\n\nHi<end_of_turn>\n"
            "<start_of_turn>model\nHello.<end_of_turn>\n"
            "<start_of_turn>user\nName a colour<end_of_turn>\n"
            "<start_of_turn>model\n");
}

TEST(ChatTemplate, Phi3EndsTurnsWithEnd) {
  EXPECT_EQ(render_chat(ChatFormat::kPhi3, kChat, true),
            "<|system|>\nYou are terse.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello.<|end|>\n"
            "<|user|>\nName a colour<|end|>\n<|assistant|>\n");
}

// Excerpts of the templates the models ship (their tokenizer_config.json chat_template).
TEST(ChatTemplate, DetectsTheCommonTemplatesByTheirMarkers) {
  EXPECT_EQ(detect_chat_format("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                               "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"),
            ChatFormat::kChatml);
  EXPECT_EQ(detect_chat_format("{% if messages[0]['role'] == 'system' %}{% set system_message = '<<SYS>>\\n' + "
                               "messages[0]['content'] | trim + '\\n<</SYS>>\\n\\n' %}{% endif %}"
                               "{{ bos_token + '[INST] ' + content | trim + ' [/INST]' }}"),
            ChatFormat::kLlama2);
  EXPECT_EQ(detect_chat_format("{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
                               "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}"
                               "{{ message['content'] + eos_token}}{% endif %}{% endfor %}"),
            ChatFormat::kMistral);
  EXPECT_EQ(detect_chat_format("{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
                               "+ message['content'] | trim + '<|eot_id|>' %}"),
            ChatFormat::kLlama3);
  EXPECT_EQ(detect_chat_format("{% if message['role'] == 'user' %}{{ '<|user|>\\n' + message['content'] + eos_token }}"
                               "{% elif message['role'] == 'assistant' %}{{ '<|assistant|>\\n' }}{% endif %}"),
            ChatFormat::kZephyr);
  EXPECT_EQ(detect_chat_format("{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"),
            ChatFormat::kGemma);
  EXPECT_EQ(detect_chat_format("{{'<|' + message['role'] + '|>' + '\\n' + message['content'] + '<|end|>\\n'}}"
                               "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"),
            ChatFormat::kPhi3);
  EXPECT_EQ(detect_chat_format("llama3"), ChatFormat::kLlama3);
  EXPECT_EQ(chat_format_name(ChatFormat::kGemma), "gemma");
}

TEST(ChatTemplate, AnUnknownTemplateIsNotGuessed) {
  EXPECT_EQ(detect_chat_format(""), std::nullopt);
  EXPECT_EQ(detect_chat_format("{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}{% endfor %}"),
            std::nullopt);
  EXPECT_TRUE(is_chat_role("assistant"));
  EXPECT_FALSE(is_chat_role("tool"));
  EXPECT_FALSE(is_chat_role("User"));
}

}  // namespace
}  // namespace prunekv
