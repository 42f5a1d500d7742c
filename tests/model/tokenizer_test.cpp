// Tokenizer on small hand-made vocabularies: the run.c encode/decode rules one at a time.
#include "model/tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <fmt/format.h>

namespace prunekv {
namespace {

// <unk>, BOS, EOS, 256 byte tokens, then the given pieces with their scores.
Tokenizer make_tokenizer(const std::vector<std::pair<std::string, float>>& extra) {
  std::vector<std::string> pieces = {"<unk>", "\n<s>\n", "\n</s>\n"};
  std::vector<float> scores = {0, 0, 0};
  for (int b = 0; b < 256; ++b) {
    pieces.push_back(fmt::format("<0x{:02X}>", b));
    scores.push_back(0);
  }
  for (const auto& [piece, score] : extra) {
    pieces.push_back(piece);
    scores.push_back(score);
  }
  return Tokenizer(std::move(pieces), std::move(scores), 1, 2, 3);
}

constexpr TokenId kFirstExtra = 259;

TEST(Tokenizer, EmptyTextIsOnlyBos) {
  const Tokenizer tok = make_tokenizer({{" ", -1}});
  EXPECT_EQ(tok.encode("", true), (std::vector<TokenId>{1}));
  EXPECT_TRUE(tok.encode("", false).empty());
}

TEST(Tokenizer, PrependsDummyPrefixSpace) {
  const Tokenizer tok = make_tokenizer({{" ", -1}, {"a", -1}});
  EXPECT_EQ(tok.encode("a", false), (std::vector<TokenId>{kFirstExtra, kFirstExtra + 1}));
}

TEST(Tokenizer, MergesHighestScoringPairFirst) {
  // "abc": "ab" (-5) and "bc" (-1) compete; "bc" wins, then "abc" is not reachable from a+bc.
  const Tokenizer tok = make_tokenizer({{" ", -9}, {"a", -9}, {"b", -9}, {"c", -9}, {"ab", -5}, {"bc", -1}});
  const TokenId space = kFirstExtra, a = kFirstExtra + 1, bc = kFirstExtra + 5;
  EXPECT_EQ(tok.encode("abc", false), (std::vector<TokenId>{space, a, bc}));
}

TEST(Tokenizer, TiesMergeLeftmostPairFirst) {
  // "aaa": both pairs are "aa"; run.c merges the leftmost, leaving "aa" + "a".
  const Tokenizer tok = make_tokenizer({{" ", -9}, {"a", -9}, {"aa", -1}});
  const TokenId space = kFirstExtra, a = kFirstExtra + 1, aa = kFirstExtra + 2;
  EXPECT_EQ(tok.encode("aaa", false), (std::vector<TokenId>{space, aa, a}));
}

TEST(Tokenizer, MergesRepeatUntilNoPairIsAPiece) {
  const Tokenizer tok =
      make_tokenizer({{" ", -9}, {"a", -9}, {"b", -9}, {"ab", -1}, {" ab", -2}, {" abab", -3}, {"ab", -4}});
  // " " a b a b -> " " ab ab -> " ab" ab -> " abab"; the duplicate "ab" keeps its first id.
  EXPECT_EQ(tok.encode("abab", false), (std::vector<TokenId>{kFirstExtra + 5}));
}

TEST(Tokenizer, UnknownCharactersFallBackToBytes) {
  const Tokenizer tok = make_tokenizer({{" ", -1}});
  // U+00E9 is two bytes, C3 A9, neither in the vocabulary as a character.
  EXPECT_EQ(tok.encode("\xC3\xA9", false), (std::vector<TokenId>{kFirstExtra, 3 + 0xC3, 3 + 0xA9}));
}

TEST(Tokenizer, KnownMultibyteCharacterIsOneToken) {
  const Tokenizer tok = make_tokenizer({{" ", -1}, {"\xC3\xA9", -1}});
  EXPECT_EQ(tok.encode("\xC3\xA9", false), (std::vector<TokenId>{kFirstExtra, kFirstExtra + 1}));
}

TEST(Tokenizer, DecodeDropsLeadingSpaceOnlyAfterBos) {
  const Tokenizer tok = make_tokenizer({{" Once", -1}});
  EXPECT_EQ(tok.decode(1, kFirstExtra), "Once");
  EXPECT_EQ(tok.decode(5, kFirstExtra), " Once");
}

TEST(Tokenizer, DecodeTurnsBytePiecesIntoRawBytes) {
  const Tokenizer tok = make_tokenizer({});
  EXPECT_EQ(tok.decode(0, 3 + 0x0A), "\n");
  const std::vector<TokenId> e_acute = {3 + 0xC3, 3 + 0xA9};
  EXPECT_EQ(tok.decode(e_acute, 0), "\xC3\xA9");
}

TEST(Tokenizer, RoundTripsArbitraryBytesThroughFallback) {
  const Tokenizer tok = make_tokenizer({{" ", -1}, {"h", -1}, {"i", -1}, {"hi", -0.5f}});
  const std::string text = "hi \xE2\x82\xAC\xF0\x9F\x98\x80 hi\n\x01";
  const std::vector<TokenId> ids = tok.encode(text, true);
  EXPECT_EQ(tok.decode(std::span<const TokenId>(ids).subspan(1), ids[0]), text);
}

TEST(Tokenizer, EncodeAtMostStopsAtTheLimitWithoutEncodingAHugeText) {
  const Tokenizer tok = make_tokenizer({{" ", -1}, {"a", -1}, {"aa", -2}, {"aaaa", -3}});
  const std::string fits(12, 'a');  // BOS, " ", then "aaaa" x 3 = 5 tokens
  ASSERT_EQ(tok.encode(fits, true).size(), 5u);
  EXPECT_EQ(tok.encode_at_most(fits, true, 5), tok.encode(fits, true));
  EXPECT_FALSE(tok.encode_at_most(fits, true, 4).has_value());
  // 64 MiB could never fit 16 tokens of at most 6 bytes each: refused by its length alone (the
  // test would take seconds and gigabytes if it were encoded).
  const std::string huge(size_t{64} << 20, 'a');
  EXPECT_FALSE(tok.encode_at_most(huge, true, 16).has_value());
}

// A chat template's markers: "<s>", "</s>" and "<|im_start|>" as special tokens.
Tokenizer make_chat_tokenizer() {
  Tokenizer tok = make_tokenizer({{" ", -9}, {"a", -9}, {"b", -9}, {"<s>", 0}, {"</s>", 0}, {"<|im_start|>", 0},
                                  {"<|im", 0}});
  tok.set_special_tokens(std::vector<TokenId>{1, 2, kFirstExtra + 3, kFirstExtra + 4, kFirstExtra + 5, kFirstExtra + 6});
  return tok;
}

TEST(Tokenizer, SpecialTokensStayTextUnlessParsed) {
  const Tokenizer tok = make_chat_tokenizer();
  const std::vector<TokenId> as_text = tok.encode("a</s>b", false);
  EXPECT_EQ(std::count(as_text.begin(), as_text.end(), kFirstExtra + 4), 0);  // spelled out, no </s> id
  EXPECT_EQ(tok.encode("a</s>b", false, /*parse_special=*/false), as_text);
}

TEST(Tokenizer, ParsedSpecialTokensBecomeTheirIdsAndEachStretchGetsItsPrefix) {
  const Tokenizer tok = make_chat_tokenizer();
  const TokenId space = kFirstExtra, a = kFirstExtra + 1, b = kFirstExtra + 2, close = kFirstExtra + 4,
                im_start = kFirstExtra + 5;
  // llama.cpp's SentencePiece rule: the text after a special token is encoded on its own, with its
  // dummy-prefix space.
  EXPECT_EQ(tok.encode("a</s>b", false, true), (std::vector<TokenId>{space, a, close, space, b}));
  // The longest special text wins where several start ("<|im_start|>" over "<|im").
  EXPECT_EQ(tok.encode("<|im_start|>a", false, true), (std::vector<TokenId>{im_start, space, a}));
  // Adjacent special tokens, none at the ends; empty stretches add nothing.
  EXPECT_EQ(tok.encode("</s><|im_start|>", false, true), (std::vector<TokenId>{close, im_start}));
  // Unknown markup stays text.
  const std::vector<TokenId> unknown = tok.encode("<|x|>", false, true);
  EXPECT_EQ(unknown, tok.encode("<|x|>", false));
}

TEST(Tokenizer, ParsedBosIsNotRepeated) {
  const Tokenizer tok = make_chat_tokenizer();
  const TokenId bos_text = kFirstExtra + 3;  // "<s>" is a special piece of its own, not BOS (id 1)
  EXPECT_EQ(tok.encode("<s>a", true, true).front(), 1);
  EXPECT_EQ(tok.encode("<s>a", true, true)[1], bos_text);
  // BOS's own text ("\n<s>\n" here) at the start is not preceded by a second BOS.
  const std::vector<TokenId> once = tok.encode("\n<s>\na", true, true);
  EXPECT_EQ(std::count(once.begin(), once.end(), 1), 1);
  EXPECT_EQ(once.front(), 1);
  EXPECT_EQ(tok.encode_at_most("a</s>b", false, 5, true), tok.encode("a</s>b", false, true));
  EXPECT_FALSE(tok.encode_at_most("a</s>b", false, 4, true).has_value());
}

}  // namespace
}  // namespace prunekv
