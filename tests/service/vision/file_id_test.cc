#include "service/vision/file_id.h"

#include <set>
#include <string>

#include "gtest/gtest.h"
#include "service/gemini/gemini_client.h"

namespace vision_gateway::vision {
namespace {

bool IsValidGeminiId(const std::string& id) {
  return !gemini::FileIdOf("files/" + id).empty();
}

TEST(FileIdTest, RoundTripWithoutOwner) {
  const std::string id = NewFileId(640, 480, "");
  EXPECT_TRUE(IsValidGeminiId(id)) << id;
  EXPECT_EQ(id.size(), 24u);
  const FileIdInfo info = DecodeFileId("files/" + id);
  EXPECT_TRUE(info.ours);
  EXPECT_EQ(info.width, 640);
  EXPECT_EQ(info.height, 480);
  EXPECT_EQ(info.owner_tag, "");
  EXPECT_EQ(DecodeFileId(id).width, 640);  // bare ids too
}

TEST(FileIdTest, RoundTripWithOwner) {
  const std::string tag = OwnerTagOf("alice@example.com");
  ASSERT_EQ(tag.size(), kOwnerTagLength);
  EXPECT_EQ(tag, OwnerTagOf("alice@example.com"));
  EXPECT_NE(tag, OwnerTagOf("bob@example.com"));
  EXPECT_EQ(OwnerTagOf(""), "");
  const std::string id = NewFileId(kMaxFileIdDimension, 1, tag);
  EXPECT_TRUE(IsValidGeminiId(id)) << id;
  EXPECT_LE(id.size(), 40u);
  const FileIdInfo info = DecodeFileId(id);
  EXPECT_EQ(info.width, kMaxFileIdDimension);
  EXPECT_EQ(info.height, 1);
  EXPECT_EQ(info.owner_tag, tag);
}

TEST(FileIdTest, OutOfRangeDimensionsAndBadTagsAreStoredAsUnknown) {
  FileIdInfo info = DecodeFileId(NewFileId(0, 100, ""));
  EXPECT_TRUE(info.ours);
  EXPECT_EQ(info.width, 0);
  EXPECT_EQ(info.height, 0);
  info = DecodeFileId(NewFileId(kMaxFileIdDimension + 1, 5, "BAD-TAG!"));
  EXPECT_EQ(info.width, 0);
  EXPECT_EQ(info.owner_tag, "");
}

TEST(FileIdTest, DecodeIsTotal) {
  for (const char* id : {"", "files/", "x27lu0k9zc2k", "files/x27lu0k9zc2k", "g1", "g1-", "g1--",
                         "g1-00hs00dc-abc", "g1-00hs00dc-abcdefghijkl-", "g2-00hs00dc-abcdefghijkl",
                         "g1-00HS00dc-abcdefghijkl", "g1-00hs00dc-abcdefg-abcdefghijkl",
                         "g1-00hs00dc-abcdefgh-abcdefghijkl-x",
                         "files/g1-zzzzzzzz-abcdefgh-abcdefghijkl-and-a-lot-more-than-forty"}) {
    const FileIdInfo info = DecodeFileId(id);
    EXPECT_FALSE(info.ours) << id;
    EXPECT_EQ(info.width, 0) << id;
    EXPECT_EQ(info.owner_tag, "") << id;
  }
}

TEST(FileIdTest, IdsAreUnique) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) ids.insert(NewFileId(10, 10, ""));
  EXPECT_EQ(ids.size(), 1000u);
}

TEST(DisplayNameTagTest, RoundTripAndBounds) {
  const std::string hex(64, 'c');
  const std::string tagged = TagDisplayName("site photo", hex);
  EXPECT_EQ(tagged.size(), std::string("site photo").size() + kSourceHashTagLength);
  DisplayNameInfo info = DecodeDisplayName(tagged);
  EXPECT_EQ(info.display_name, "site photo");
  EXPECT_EQ(info.source_sha256, hex);
  // An empty name keeps just the tag, and decodes back to empty.
  info = DecodeDisplayName(TagDisplayName("", hex));
  EXPECT_EQ(info.display_name, "");
  EXPECT_EQ(info.source_sha256, hex);
  // Too long to tag within Gemini's 512: left as it is.
  const std::string longest(kMaxDisplayNameBytes - kSourceHashTagLength, 'n');
  EXPECT_EQ(TagDisplayName(longest, hex).size(), kMaxDisplayNameBytes);
  EXPECT_EQ(TagDisplayName(longest + "n", hex), longest + "n");
  // Not a hash: no tag.
  EXPECT_EQ(TagDisplayName("x", "ABC"), "x");
  EXPECT_EQ(TagDisplayName("x", std::string(64, 'C')), "x");
  // Untagged names decode as themselves, whatever they hold.
  info = DecodeDisplayName("a|vg-src-sha256=" + std::string(63, 'c'));
  EXPECT_EQ(info.source_sha256, "");
  EXPECT_EQ(info.display_name, "a|vg-src-sha256=" + std::string(63, 'c'));
}

TEST(DisplayNameTagTest, IsSha256Hex) {
  EXPECT_TRUE(IsSha256Hex(std::string(64, '0')));
  EXPECT_FALSE(IsSha256Hex(std::string(63, '0')));
  EXPECT_FALSE(IsSha256Hex(std::string(64, 'A')));
  EXPECT_FALSE(IsSha256Hex(""));
}

}  // namespace
}  // namespace vision_gateway::vision
