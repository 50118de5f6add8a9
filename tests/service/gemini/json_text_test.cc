#include "service/gemini/json_text.h"

#include <string>
#include <string_view>
#include <utility>

#include "boost/json.hpp"
#include "gtest/gtest.h"

namespace vision_gateway::gemini {
namespace {

namespace json = boost::json;

json::value Parse(std::string_view text) {
  json::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  EXPECT_FALSE(ec) << "not JSON: " << text;
  return v;
}

TEST(JsonTextTest, Base64MatchesRfc4648Vectors) {
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}, {"\xff\xfe", "//4="},
  };
  for (const auto& [raw, encoded] : vectors) {
    std::string out = "prefix:";
    AppendBase64(out, raw);
    EXPECT_EQ(out, "prefix:" + encoded);
    EXPECT_EQ(Base64Size(raw.size()), encoded.size());
  }
}

TEST(JsonTextTest, JsonStringEscapesAndPassesUtf8Through) {
  const std::pair<std::string, std::string> cases[] = {
      {"plain", R"("plain")"},
      {"q\"b\\s/", R"("q\"b\\s/")"},
      {"\b\f\n\r\t", R"("\b\f\n\r\t")"},
      {std::string("\x00\x01\x1f\x7f", 4), "\"\\u0000\\u0001\\u001f\x7f\""},
      {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
      // Invalid UTF-8: stray continuation, truncated sequence, overlong, surrogate, > U+10FFFF.
      {"a\x80z", R"("a\ufffdz")"},
      {"\xe2\x82", R"("\ufffd\ufffd")"},
      {"\xc0\xaf", R"("\ufffd\ufffd")"},
      {"\xed\xa0\x80", R"("\ufffd\ufffd\ufffd")"},
      {"\xf4\x90\x80\x80", R"("\ufffd\ufffd\ufffd\ufffd")"},
  };
  for (const auto& [raw, expected] : cases) {
    std::string out;
    AppendJsonString(out, raw);
    EXPECT_EQ(out, expected);
    EXPECT_EQ(JsonStringSize(raw), out.size()) << expected;
    // Always a valid JSON string.
    EXPECT_TRUE(Parse(out).is_string());
  }
}

TEST(JsonTextTest, JsonStringRoundTripsEveryValidCodePointClass) {
  std::string text = "ascii \x01 \xc2\x80 \xdf\xbf \xe0\xa0\x80 \xef\xbf\xbf \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf";
  std::string out;
  AppendJsonString(out, text);
  const json::value v = Parse(out);
  ASSERT_TRUE(v.is_string());
  EXPECT_EQ(std::string_view(v.get_string().data(), v.get_string().size()), text);
}

TEST(JsonTextTest, AppendsAfterExistingBytesWithoutTouchingThem) {
  std::string out = "{\"k\":";
  AppendJsonString(out, "v");
  out += ',';
  AppendBase64(out, "ab");
  EXPECT_EQ(out, "{\"k\":\"v\",YWI=");
}

}  // namespace
}  // namespace vision_gateway::gemini
