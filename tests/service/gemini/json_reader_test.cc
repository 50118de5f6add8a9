#include "service/gemini/json_reader.h"

#include <cstdint>
#include <string>
#include <vector>

#include "boost/json.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/gemini/types.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::gemini::internal {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::vision_gateway::testing::IsOk;
using ::vision_gateway::testing::StatusIs;

TEST(JsonReaderTest, ParsedDocumentLivesInItsArenaWithoutACopy) {
  // The value must use the document's arena: a value built in the arena and then assigned into a
  // value of another memory resource is deep-copied to the heap (one allocation per node).
  Document doc;
  ASSERT_THAT(ParseBounded(R"({"candidates":[{"content":{"parts":[{"text":"a long enough text to be)"
                           R"( stored out of line"}]}}],"modelVersion":"m"})",
                           {}, Side::kResponse, doc),
              IsOk());
  EXPECT_EQ(doc.value.storage().get(), &doc.resource);
  const json::value& text =
      doc.object().at("candidates").at(0).at("content").at("parts").at(0).at("text");
  EXPECT_EQ(text.storage().get(), &doc.resource);
}

TEST(JsonReaderTest, ParseRefusesNonObjectsBadJsonAndOversizeWithTheSidesCode) {
  Document a;
  EXPECT_THAT(ParseBounded("[1]", {}, Side::kResponse, a),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("not a JSON object")));
  Document b;
  EXPECT_THAT(ParseBounded("{\"secret-value\"", {}, Side::kRequest, b),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("invalid request"), Not(HasSubstr("secret-value")))));
  Document c;
  EXPECT_THAT(ParseBounded("{}", JsonCodecOptions{.max_body_bytes = 1}, Side::kResponse, c),
              StatusIs(absl::StatusCode::kResourceExhausted));
  Document d;
  EXPECT_THAT(ParseBounded("{}", JsonCodecOptions{.max_body_bytes = 1}, Side::kRequest, d),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(JsonReaderTest, ReaderKeepsTheFirstErrorWithItsPath) {
  Document doc;
  ASSERT_THAT(ParseBounded(R"({"a":"x","b":1,"c":{}})", {}, Side::kResponse, doc), IsOk());
  Reader r = ReaderFor(Side::kResponse);
  std::string s;
  r.String(Reader::Find(doc.object(), "b"), Sub("root", "b"), s);
  r.String(Reader::Find(doc.object(), "c"), Sub("root", "c"), s);
  EXPECT_THAT(r.status(), StatusIs(absl::StatusCode::kInternal,
                                   "malformed Gemini response: root.b is not a string"));
}

TEST(JsonReaderTest, FindFallsBackToSnakeCaseAndTreatsNullAsAbsent) {
  Document doc;
  ASSERT_THAT(ParseBounded(R"({"mime_type":"image/png","n":null})", {}, Side::kRequest, doc),
              IsOk());
  const json::value* v = Reader::Find(doc.object(), "mimeType", "mime_type");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->get_string(), "image/png");
  EXPECT_EQ(Reader::Find(doc.object(), "mimeType"), nullptr);
  EXPECT_EQ(Reader::Find(doc.object(), "n"), nullptr);
}

TEST(JsonReaderTest, Int32AcceptsNumbersIntegralDoublesAndDecimalStringsInRange) {
  Document doc;
  ASSERT_THAT(ParseBounded(R"({"i":-5,"d":7.0,"s":"42","big":2147483648,"frac":1.5,"text":"4x"})",
                           {}, Side::kResponse, doc),
              IsOk());
  Reader r = ReaderFor(Side::kResponse);
  int32_t i = 0, d = 0, s = 0;
  r.Int32(Reader::Find(doc.object(), "i"), "i", i);
  r.Int32(Reader::Find(doc.object(), "d"), "d", d);
  r.Int32(Reader::Find(doc.object(), "s"), "s", s);
  EXPECT_THAT(r.status(), IsOk());
  EXPECT_EQ(i, -5);
  EXPECT_EQ(d, 7);
  EXPECT_EQ(s, 42);
  for (const char* bad : {"big", "frac", "text"}) {
    Reader fails = ReaderFor(Side::kResponse);
    int32_t out = 0;
    fails.Int32(Reader::Find(doc.object(), bad), bad, out);
    EXPECT_THAT(fails.status(), StatusIs(absl::StatusCode::kInternal, HasSubstr("32-bit"))) << bad;
  }
}

TEST(JsonReaderTest, DecodeBase64AcceptsBothAlphabetsAndOptionalPadding) {
  std::string out;
  EXPECT_TRUE(DecodeBase64("Zm9vYg==", out));
  EXPECT_EQ(out, "foob");
  EXPECT_TRUE(DecodeBase64("Zm9vYg", out));
  EXPECT_EQ(out, "foob");
  EXPECT_TRUE(DecodeBase64("-_8", out));
  EXPECT_EQ(out, "\xfb\xff");
  EXPECT_TRUE(DecodeBase64("+/8=", out));
  EXPECT_EQ(out, "\xfb\xff");
  EXPECT_FALSE(DecodeBase64("Zm9vY", out));  // a lone 6-bit group
  EXPECT_FALSE(DecodeBase64("Zm9v!g==", out));
}

TEST(JsonReaderTest, ReadContentsNamesTheIndexOfABadPart) {
  Document doc;
  ASSERT_THAT(ParseBounded(R"({"contents":[{"parts":[{"text":"a"},{"text":3}]}]})", {},
                           Side::kRequest, doc),
              IsOk());
  Reader r = ReaderFor(Side::kRequest);
  std::vector<Content> contents;
  ReadContents(r, Reader::Find(doc.object(), "contents"), "contents", contents);
  EXPECT_THAT(r.status(), StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("contents[0].parts[1].text is not a string")));
}

}  // namespace
}  // namespace vision_gateway::gemini::internal

namespace vision_gateway::gemini::internal {
namespace {

TEST(JsonPathTest, NamesNestedFieldsAndIndicesOnlyWhenAsked) {
  const Path root("candidates", 2);
  const Path content = Sub(root, "content");
  const Path parts = Sub(content, "parts");
  const Path part = Index(parts, 1);
  EXPECT_EQ(Sub(part, "text").ToString(), "candidates[2].content.parts[1].text");
  const Path document("");
  EXPECT_EQ(Sub(document, "name").ToString(), "name");
  EXPECT_EQ(Index(Path("files"), 0).ToString(), "files[0]");
  EXPECT_EQ(Path("usageMetadata.totalTokenCount").ToString(), "usageMetadata.totalTokenCount");
}

}  // namespace
}  // namespace vision_gateway::gemini::internal
