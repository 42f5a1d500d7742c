// Tokenizers from the real vocabularies in ../shared/models against reference token ids.
#include <gtest/gtest.h>

#include "model/model.h"
#include "model/tokenizer.h"
#include "tests/testing/golden.h"
#include "tests/testing/model_paths.h"

namespace prunekv {
namespace {

TEST(Tokenizer, EncodeReproducesGoldenPromptTokens) {
  const std::string path = testing::model_path("tok512.bin");
  PKV_REQUIRE_SHARED_FILE(path);
  PKV_REQUIRE_SHARED_FILE(testing::golden_path());
  const Tokenizer tok = Tokenizer::from_llama2c_file(path, 512);
  const auto cases = testing::load_golden();
  ASSERT_EQ(cases.size(), 60u);
  for (const auto& c : cases) EXPECT_EQ(tok.encode(c.prompt, true), c.prompt_tokens) << c.id;
}

TEST(Tokenizer, DecodeReproducesGoldenOutputText) {
  const std::string path = testing::model_path("tok512.bin");
  PKV_REQUIRE_SHARED_FILE(path);
  PKV_REQUIRE_SHARED_FILE(testing::golden_path());
  const Tokenizer tok = Tokenizer::from_llama2c_file(path, 512);
  const auto cases = testing::load_golden();
  ASSERT_EQ(cases.size(), 60u);
  for (const auto& c : cases) {
    // The continuation follows the last prompt token.
    EXPECT_EQ(tok.decode(c.output_tokens, c.prompt_tokens.back()), c.output_text) << c.id;
  }
}

TEST(Tokenizer, GoldenPromptsRoundTrip) {
  const std::string path = testing::model_path("tok512.bin");
  PKV_REQUIRE_SHARED_FILE(path);
  PKV_REQUIRE_SHARED_FILE(testing::golden_path());
  const Tokenizer tok = Tokenizer::from_llama2c_file(path, 512);
  for (const auto& c : testing::load_golden()) {
    const auto ids = tok.encode(c.prompt, true);
    EXPECT_EQ(tok.decode(std::span<const TokenId>(ids).subspan(1), ids[0]), c.prompt) << c.id;
  }
}

// The expected ids are llama2.c test.c's, which come from Meta's Llama 2 SentencePiece model.
TEST(Tokenizer, Llama2VocabularyMatchesSentencePieceIds) {
  const std::string path = testing::model_path("tokenizer.bin");
  PKV_REQUIRE_SHARED_FILE(path);
  const Tokenizer tok = Tokenizer::from_llama2c_file(path, 32000);
  EXPECT_EQ(tok.encode("", true), (std::vector<TokenId>{1}));
  EXPECT_EQ(tok.encode("I believe the meaning of life is", true),
            (std::vector<TokenId>{1, 306, 4658, 278, 6593, 310, 2834, 338}));
  EXPECT_EQ(tok.encode("Simply put, the theory of relativity states that ", true),
            (std::vector<TokenId>{1, 3439, 17632, 1925, 29892, 278, 6368, 310, 14215, 537, 5922, 393, 29871}));
  EXPECT_EQ(tok.encode("A brief message congratulating the team on the launch:\n\n        Hi everyone,\n\n        I just ",
                       true),
            (std::vector<TokenId>{1,    319, 11473, 2643, 378,  629,   271, 18099, 278,  3815, 373, 278, 6826,
                                  29901, 13, 13,    4706, 6324, 14332, 29892, 13,  13,   4706, 306, 925, 29871}));
  EXPECT_EQ(tok.encode("Translate English to French:\n\n        sea otter => loutre de mer\n        peppermint => "
                       "menthe poivr\xC3\xA9" "e\n        plush girafe => girafe peluche\n        cheese =>",
                       true),
            (std::vector<TokenId>{1,   4103, 9632, 4223, 304,  5176, 29901, 13,   13,   4706,  7205, 4932, 357,
                                  1149, 301, 449,  276,  316,  2778, 13,    4706, 1236, 407,   837,  524,  1149,
                                  6042, 354, 772,  440,  29878, 1318, 13,   4706, 715,  1878,  330,  3055, 1725,
                                  1149, 330, 3055, 1725, 4639, 28754, 13,   4706, 923,  968,   1149}));
}

TEST(Tokenizer, Llama2VocabularyRoundTripsTextAndBytes) {
  const std::string path = testing::model_path("tokenizer.bin");
  PKV_REQUIRE_SHARED_FILE(path);
  const Tokenizer tok = Tokenizer::from_llama2c_file(path, 32000);
  for (const std::string text : {"Once upon a time, there was a little girl named Lily.",
                                 "Tabs\tand\nnewlines\n\n  and  double  spaces",
                                 "na\xC3\xAFve caf\xC3\xA9, \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E, \xF0\x9F\x98\x80 emoji",
                                 "\x01\x02 control bytes \x7F"}) {
    const auto ids = tok.encode(text, true);
    EXPECT_EQ(tok.decode(std::span<const TokenId>(ids).subspan(1), ids[0]), text) << text;
  }
}

TEST(Tokenizer, EncodesLongTextInOnePass) {
  const std::string path = testing::model_path("tokenizer.bin");
  PKV_REQUIRE_SHARED_FILE(path);
  const Tokenizer tok = Tokenizer::from_llama2c_file(path, 32000);
  std::string text;
  for (int i = 0; i < 400; ++i) text += "The little dog ran to the park and played with a red ball. ";
  const auto ids = tok.encode(text, true);
  EXPECT_GT(ids.size(), 4000u);
  EXPECT_EQ(tok.decode(std::span<const TokenId>(ids).subspan(1), ids[0]), text);
}

// llama.cpp's converter marks <s> and </s> CONTROL in stories260K's GGUF: a rendered chat prompt
// ("... [/INST] A </s><s>[INST] ...") then gets their ids, not their characters.
TEST(Tokenizer, GgufControlTokensAreParsedFromChatText) {
  const std::string path = testing::model_path("stories260K-f32.gguf");
  PKV_REQUIRE_SHARED_FILE(path);
  const auto model = load_model(path);
  ASSERT_TRUE(model->tokenizer.has_value());
  const Tokenizer& tok = *model->tokenizer;
  EXPECT_GE(tok.num_special_tokens(), 2u);
  const std::vector<TokenId> ids = tok.encode("Once</s><s>Lily", true, /*parse_special=*/true);
  std::vector<TokenId> expected = tok.encode("Once", true);
  expected.push_back(tok.eos_id());
  expected.push_back(tok.bos_id());
  const std::vector<TokenId> lily = tok.encode("Lily", false);
  expected.insert(expected.end(), lily.begin(), lily.end());
  EXPECT_EQ(ids, expected);
  // Plain completions keep treating the same text as text.
  EXPECT_NE(tok.encode("Once</s><s>Lily", true), expected);
}

}  // namespace
}  // namespace prunekv
