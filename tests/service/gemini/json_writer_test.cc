#include "service/gemini/json_writer.h"

#include <string>
#include <vector>

#include "boost/json.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/gemini/types.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::gemini::internal {
namespace {

using ::testing::HasSubstr;
using ::vision_gateway::testing::IsOk;
using ::vision_gateway::testing::StatusIs;

TEST(JsonWriterTest, SeparatesMembersAndElementsAtEveryDepth) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.StringMember("a", "x");
  w.Key("b");
  w.BeginArray();
  w.Int(1);
  w.BeginObject();
  w.EndObject();
  w.BeginArray();
  w.Bool(true);
  w.Bool(false);
  w.EndArray();
  w.Raw(R"({"k":[1]})");
  w.EndArray();
  w.IntMemberIfNonZero("zero", 0);
  w.IntMemberIfNonZero("n", -7);
  w.StringMemberIfSet("empty", "");
  w.Key("f");
  w.Float(0.5f);
  w.Key("bytes");
  w.Base64("hi");
  w.EndObject();
  EXPECT_EQ(out, R"({"a":"x","b":[1,{},[true,false],{"k":[1]}],"n":-7,"f":0.5,"bytes":"aGk="})");
}

TEST(JsonWriterTest, PartWithoutDataKeepsAnEmptyText) {
  std::string out;
  JsonWriter w(out);
  Content content;
  content.parts.emplace_back();
  WriteContent(w, content);
  EXPECT_EQ(out, R"({"parts":[{"text":""}]})");
}

TEST(JsonWriterTest, EstimateBoundsWhatIsWrittenAndCountsPayloadExactly) {
  Content content;
  content.role = "user";
  Part image;
  image.inline_data = Blob{.mime_type = "image/png", .data = std::string(1000, '\x01')};
  image.media_resolution = "MEDIA_RESOLUTION_LOW";
  content.parts.push_back(image);
  content.parts.push_back(Part{.text = "say \"hi\"\n"});
  content.parts.push_back(Part{.file_data = FileData{.mime_type = "image/jpeg", .file_uri = "u"}});
  SizeEstimate size;
  EstimateContent(content, size);
  std::string out;
  JsonWriter w(out);
  WriteContent(w, content);
  EXPECT_LE(out.size(), size.bound);
  EXPECT_LE(size.exact, out.size());
  // The payload: the base64 of the image dominates and is counted exactly.
  EXPECT_GE(size.exact, Base64Size(1000));
}

TEST(JsonWriterTest, ValidateRefusesTwoDataFieldsAndNamesThePart) {
  Content content;
  content.parts.push_back(Part{.text = "ok"});
  Part both{.text = "t"};
  both.file_data = FileData{.mime_type = "image/png", .file_uri = "u"};
  content.parts.push_back(both);
  EXPECT_THAT(ValidateContent(content, "contents[3]"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("contents[3].parts[1]")));
  content.parts.pop_back();
  EXPECT_THAT(ValidateContent(content, "contents[3]"), IsOk());
}

}  // namespace
}  // namespace vision_gateway::gemini::internal
