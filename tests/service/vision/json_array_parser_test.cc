#include "service/vision/json_array_parser.h"

#include <cstddef>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::vision {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::vision_gateway::testing::IsOk;
using ::vision_gateway::testing::StatusIs;

struct Outcome {
  std::vector<std::string> elements;
  bool started = false;
  bool closed = false;
  size_t emitted = 0;
};

// Feeds `pieces` in order to a fresh parser; every Feed must succeed.
Outcome FeedPieces(const std::vector<std::string_view>& pieces) {
  JsonArrayStreamParser parser;
  Outcome out;
  for (std::string_view piece : pieces) {
    EXPECT_THAT(parser.Feed(piece, [&](std::string_view e) { out.elements.emplace_back(e); }),
                IsOk());
  }
  out.started = parser.array_started();
  out.closed = parser.array_closed();
  out.emitted = parser.elements_emitted();
  return out;
}

// Checks the same outcome for the whole text, every two-piece split and byte-by-byte feeding.
void ExpectUnderAllSplits(std::string_view text, const std::vector<std::string>& expected,
                          bool started, bool closed) {
  auto check = [&](const Outcome& got, const std::string& how) {
    EXPECT_THAT(got.elements, ElementsAreArray(expected)) << how;
    EXPECT_EQ(got.started, started) << how;
    EXPECT_EQ(got.closed, closed) << how;
    EXPECT_EQ(got.emitted, expected.size()) << how;
  };
  check(FeedPieces({text}), "whole");
  for (size_t i = 0; i <= text.size(); ++i) {
    check(FeedPieces({text.substr(0, i), text.substr(i)}), "split at " + std::to_string(i));
    if (::testing::Test::HasFailure()) return;  // one report is enough
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < text.size(); ++i) bytes.push_back(text.substr(i, 1));
  check(FeedPieces(bytes), "byte by byte");
}

const std::string kCat = R"({"box_2d": [100, 200, 300, 400], "label": "cat"})";
const std::string kDog = R"({"box_2d":[1,2,3,4],"label":"dog"})";

TEST(JsonArrayStreamParserTest, PlainArray) {
  ExpectUnderAllSplits("[" + kCat + ", " + kDog + "]", {kCat, kDog}, true, true);
}

TEST(JsonArrayStreamParserTest, FencedArrayWithTrailingFence) {
  ExpectUnderAllSplits("```json\n[\n  " + kCat + ",\n  " + kDog + "\n]\n```\n", {kCat, kDog}, true,
                       true);
}

TEST(JsonArrayStreamParserTest, ProseThenFencedArray) {
  ExpectUnderAllSplits("Here are the boxes:\n```json\n[" + kCat + "]\n```", {kCat}, true, true);
}

TEST(JsonArrayStreamParserTest, ProseBracketNotFollowedByObjectIsSkipped) {
  ExpectUnderAllSplits("Each box is [ymin, xmin, ymax, xmax] (see [1]).\n[ \n" + kDog + "]", {kDog},
                       true, true);
}

TEST(JsonArrayStreamParserTest, BracketsQuotesAndEscapesInsideLabels) {
  const std::vector<std::string> items = {
      R"({"box_2d":[1,2,3,4],"label":"]"})",
      R"({"box_2d":[1,2,3,4],"label":"}"})",
      R"({"label":"[","box_2d":[1,2,3,4]})",
      R"({"box_2d":[1,2,3,4],"label":"{[\"]}\"]"})",
      R"({"box_2d":[1,2,3,4],"label":"back\\"})",
      R"({"box_2d":[1,2,3,4],"label":"\\\"]\\"})",
      R"({"box_2d":[1,2,3,4],"label":"caf\u00e9 \u65e5"})",
      "{\"box_2d\":[1,2,3,4],\"label\":\"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac ]\"}",
  };
  std::string text = "```json\n[";
  for (size_t i = 0; i < items.size(); ++i) text += (i ? ",\n" : "") + items[i];
  text += "]\n```";
  ExpectUnderAllSplits(text, items, true, true);
}

TEST(JsonArrayStreamParserTest, ThreeWaySplitsOfTrickyText) {
  const std::string a = R"({"label":"x\"]}\\","box_2d":[1,2,3,4]})";
  const std::string b = "{\"label\":\"\xe6\x97\xa5\\u00e9[\"}";
  const std::string text = "ok [x]? {no}:\n[" + a + "," + b + "]";
  for (size_t i = 0; i <= text.size(); ++i) {
    for (size_t j = i; j <= text.size(); ++j) {
      const std::string_view t(text);
      Outcome got = FeedPieces({t.substr(0, i), t.substr(i, j - i), t.substr(j)});
      ASSERT_THAT(got.elements, ElementsAre(a, b)) << i << "," << j;
      ASSERT_TRUE(got.closed);
    }
  }
}

TEST(JsonArrayStreamParserTest, LongBase64MaskIsOneElement) {
  std::string b64;
  const std::string_view alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t i = 0; i < 6000; ++i) b64 += alphabet[(i * 7) % alphabet.size()];
  const std::string item = R"({"box_2d": [10, 20, 30, 40], "mask": "data:image/png;base64,)" + b64 +
                           R"(==", "label": "mask ] {"})";
  ExpectUnderAllSplits("```json\n[" + item + "," + kDog + "]\n```", {item, kDog}, true, true);
}

TEST(JsonArrayStreamParserTest, LargeElementAcrossManyFeeds) {
  const std::string item = R"({"mask":")" + std::string(3 << 20, 'A') + R"("})";
  const std::string text = "[" + item + "]";
  JsonArrayStreamParser parser;
  std::vector<std::string> got;
  for (size_t pos = 0; pos < text.size(); pos += 4093) {
    ASSERT_THAT(parser.Feed(std::string_view(text).substr(pos, 4093),
                            [&](std::string_view e) { got.emplace_back(e); }),
                IsOk());
  }
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], item);
  EXPECT_TRUE(parser.array_closed());
}

TEST(JsonArrayStreamParserTest, WhitespaceEverywhere) {
  const std::string obj = "{ \"box_2d\" :\n [ 1 ,\t2 , 3,4 ] ,\r\n \"label\" : \"a b\" }";
  ExpectUnderAllSplits("\n\n   [ \r\n\t" + obj + " \n , \n\t" + obj + "\r\n ]  \n", {obj, obj},
                       true, true);
}

TEST(JsonArrayStreamParserTest, EmptyArray) {
  ExpectUnderAllSplits("[]", {}, true, true);
  ExpectUnderAllSplits("```json\n[ \n\t ]\n```", {}, true, true);
}

TEST(JsonArrayStreamParserTest, NoArrayAtAll) {
  ExpectUnderAllSplits("", {}, false, false);
  ExpectUnderAllSplits("I could not find any objects in this image.", {}, false, false);
  ExpectUnderAllSplits("See [1] and [ x ] and {\"a\": 1} and \"[\" then [", {}, false, false);
}

TEST(JsonArrayStreamParserTest, TruncatedOutputEmitsOnlyCompleteElements) {
  const std::string text = "```json\n[" + kCat + ",\n" + kDog + ",\n{\"box_2d\": [5, 6";
  ExpectUnderAllSplits(text, {kCat, kDog}, true, false);
  // Truncated inside a string and inside an escape.
  ExpectUnderAllSplits("[" + kCat + ",{\"label\":\"abc\\", {kCat}, true, false);
  // A bare token is only complete once a delimiter follows it.
  ExpectUnderAllSplits("[" + kCat + ", 12", {kCat}, true, false);
}

TEST(JsonArrayStreamParserTest, EmitsEachObjectTheMomentItCloses) {
  const std::vector<std::string> items = {kCat, R"({"label":"}]","box_2d":[1,2,3,4]})", kDog};
  const std::string text =
      "Sure!\n```json\n[" + items[0] + ",\n" + items[1] + "," + items[2] + "\n]\n```";
  std::vector<size_t> ends;  // offset just past each element's closing brace
  size_t from = 0;
  for (const std::string& item : items) {
    const size_t at = text.find(item, from);
    ASSERT_NE(at, std::string::npos);
    ends.push_back(at + item.size());
    from = ends.back();
  }
  for (size_t i = 0; i <= text.size(); ++i) {
    size_t complete = 0;
    for (size_t end : ends) complete += end <= i ? 1 : 0;
    Outcome got = FeedPieces({std::string_view(text).substr(0, i)});
    ASSERT_EQ(got.emitted, complete) << "prefix length " << i;
    ASSERT_EQ(got.elements.size(), complete) << "prefix length " << i;
  }
}

TEST(JsonArrayStreamParserTest, NonObjectElementsAreEmittedVerbatim) {
  ExpectUnderAllSplits(
      R"([{"a":1}, 1, -2.5e3,"s]\"}",[1,[2,"]"]],true , null,{"b":[]}])",
      {R"({"a":1})", "1", "-2.5e3", R"("s]\"}")", R"([1,[2,"]"]])", "true", "null", R"({"b":[]})"},
      true, true);
}

TEST(JsonArrayStreamParserTest, LenientSeparators) {
  ExpectUnderAllSplits("[" + kCat + kDog + ",," + kCat + ",]", {kCat, kDog, kCat}, true, true);
}

TEST(JsonArrayStreamParserTest, TextAfterTheArrayIsIgnored) {
  ExpectUnderAllSplits("[" + kCat + "]\n```\nAlso: [" + kDog + "] {oops", {kCat}, true, true);
}

TEST(JsonArrayStreamParserTest, ArrayOfArraysTakesTheInnerArray) {
  ExpectUnderAllSplits("[[" + kCat + "," + kDog + "], [" + kDog + "]]", {kCat, kDog}, true, true);
}

TEST(JsonArrayStreamParserTest, WrapperObjectYieldsInnerArray) {
  ExpectUnderAllSplits(R"({"boxes": [)" + kCat + "]}", {kCat}, true, true);
}

TEST(JsonArrayStreamParserTest, UnbalancedElementIsNotTheScannersProblem) {
  // A '}' inside a string does not close; a ']' for a '{' closes early and the stray '}' that
  // follows becomes a garbage token element. The caller's JSON parser rejects both.
  ExpectUnderAllSplits(R"([{"a":"}"}, {"b":[1]]}, {"c":2}])",
                       {R"({"a":"}"})", R"({"b":[1]])", "}", R"({"c":2})"}, true, true);
}

TEST(JsonArrayStreamParserTest, ElementOverLimitIsResourceExhausted) {
  const std::string small = R"({"label":"a"})";  // 13 bytes
  const std::string big = R"({"label":"abcdefghijklmnopqrstuvwxyz"})";
  for (size_t split = 0; split <= big.size(); ++split) {
    JsonArrayStreamParser parser(small.size());
    std::vector<std::string> got;
    auto collect = [&](std::string_view e) { got.emplace_back(e); };
    ASSERT_THAT(parser.Feed("[" + small + ",", collect), IsOk());
    absl::Status first = parser.Feed(std::string_view(big).substr(0, split), collect);
    absl::Status second = parser.Feed(big.substr(split) + "]", collect);
    // The bound is crossed in whichever piece holds byte small.size()+1 of the element.
    const bool crossed_in_first = split > small.size();
    if (crossed_in_first) {
      EXPECT_THAT(first, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("13 bytes")));
    } else {
      EXPECT_THAT(first, IsOk()) << split;
    }
    EXPECT_THAT(second, StatusIs(absl::StatusCode::kResourceExhausted)) << split;
    EXPECT_THAT(got, ElementsAre(small)) << split;
    EXPECT_FALSE(parser.array_closed());
    // The parser stays failed.
    EXPECT_THAT(parser.Feed("]", collect), StatusIs(absl::StatusCode::kResourceExhausted));
  }
}

TEST(JsonArrayStreamParserTest, ElementExactlyAtLimitIsAccepted) {
  const std::string item = R"({"label":"a"})";
  for (const std::string& element :
       {item, std::string(R"("abcdefghijk")"), std::string("1234567890123")}) {
    ASSERT_EQ(element.size(), item.size());
    JsonArrayStreamParser parser(item.size());
    std::vector<std::string> got;
    ASSERT_THAT(parser.Feed("[" + item + "," + element + " ]",
                            [&](std::string_view e) { got.emplace_back(e); }),
                IsOk());
    EXPECT_THAT(got, ElementsAre(item, element));
    EXPECT_TRUE(parser.array_closed());
  }
}

TEST(JsonArrayStreamParserTest, PreambleIsNotBuffered) {
  // Prose of any length before the array does not count against the element bound.
  JsonArrayStreamParser parser(16);
  std::vector<std::string> got;
  auto collect = [&](std::string_view e) { got.emplace_back(e); };
  for (int i = 0; i < 1000; ++i) {
    ASSERT_THAT(parser.Feed("thinking about it [not yet] ... ", collect), IsOk());
  }
  ASSERT_THAT(parser.Feed("[{\"a\":1}]", collect), IsOk());
  EXPECT_THAT(got, ElementsAre("{\"a\":1}"));
  EXPECT_TRUE(parser.array_closed());
}

TEST(JsonArrayStreamParserTest, RandomSplitsMatchWholeFeed) {
  const std::string text = "Here:\n```json\n[" + kCat + ",\n" +
                           R"({"box_2d":[0,0,1000,1000],"label":"\"q\" [x] {y} \\ \u00e9"}, )" +
                           "{\"label\":\"\xe6\x97\xa5\xe6\x9c\xac\"}, 7, \"s\"]\n```";
  const Outcome whole = FeedPieces({text});
  ASSERT_EQ(whole.elements.size(), 5u);
  std::mt19937 rng(12345);
  for (int round = 0; round < 500; ++round) {
    std::vector<std::string_view> pieces;
    size_t pos = 0;
    while (pos < text.size()) {
      const size_t len = std::uniform_int_distribution<size_t>(0, 9)(rng);
      pieces.push_back(std::string_view(text).substr(pos, len));
      pos += len;
    }
    const Outcome got = FeedPieces(pieces);
    ASSERT_EQ(got.elements, whole.elements) << "round " << round;
    ASSERT_TRUE(got.closed);
  }
}

TEST(JsonArrayStreamParserTest, StateBeforeAnyInput) {
  JsonArrayStreamParser parser;
  EXPECT_FALSE(parser.array_started());
  EXPECT_FALSE(parser.array_closed());
  EXPECT_EQ(parser.elements_emitted(), 0u);
  std::vector<std::string> got;
  ASSERT_THAT(parser.Feed("[", [&](std::string_view e) { got.emplace_back(e); }), IsOk());
  EXPECT_FALSE(parser.array_started());  // not yet known to be the array
  ASSERT_THAT(parser.Feed(" {", [&](std::string_view e) { got.emplace_back(e); }), IsOk());
  EXPECT_TRUE(parser.array_started());
  EXPECT_THAT(got, IsEmpty());
}

}  // namespace
}  // namespace vision_gateway::vision
