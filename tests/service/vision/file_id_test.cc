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

constexpr char kFile[] = "files/g1-00hs00dc-k3x9q2m1z8aa";

TEST(DisplayNameTagTest, RoundTripAndBounds) {
  const std::string key = RandomFileTagKey();
  const std::string hex(64, 'c');
  const std::string tagged = TagDisplayName("site photo", kFile, hex, 123456, key);
  EXPECT_GT(tagged.size(), std::string("site photo").size());
  DisplayNameInfo info = DecodeDisplayName(tagged, kFile, key);
  EXPECT_EQ(info.display_name, "site photo");
  EXPECT_EQ(info.source_sha256, hex);
  EXPECT_EQ(info.source_size, 123456);
  // An empty name keeps just the tag, and decodes back to empty.
  info = DecodeDisplayName(TagDisplayName("", kFile, hex, 1, key), kFile, key);
  EXPECT_EQ(info.display_name, "");
  EXPECT_EQ(info.source_sha256, hex);
  // Too long to tag within Gemini's 512: left as it is; anything up to 512 minus the longest tag
  // is always tagged.
  const std::string longest(kMaxDisplayNameBytes - kMaxSourceTagLength, 'n');
  EXPECT_LE(TagDisplayName(longest, kFile, hex, INT64_MAX, key).size(), kMaxDisplayNameBytes);
  EXPECT_NE(TagDisplayName(longest, kFile, hex, INT64_MAX, key), longest);
  const std::string too_long(kMaxDisplayNameBytes - 20, 'n');
  EXPECT_EQ(TagDisplayName(too_long, kFile, hex, 5, key), too_long);
  // Not a hash, no size or no key: no tag.
  EXPECT_EQ(TagDisplayName("x", kFile, "ABC", 5, key), "x");
  EXPECT_EQ(TagDisplayName("x", kFile, std::string(64, 'C'), 5, key), "x");
  EXPECT_EQ(TagDisplayName("x", kFile, hex, 0, key), "x");
  EXPECT_EQ(TagDisplayName("x", kFile, hex, 5, ""), "x");
  // Untagged names decode as themselves, whatever they hold.
  info = DecodeDisplayName("a|vg-src=" + std::string(63, 'c'), kFile, key);
  EXPECT_EQ(info.source_sha256, "");
  EXPECT_EQ(info.display_name, "a|vg-src=" + std::string(63, 'c'));
}

// Issue #17: a tag is trusted only when the gateway wrote it on that very file under its key.
TEST(DisplayNameTagTest, OnlyTheGatewaysOwnTagForThisFileIsTrusted) {
  const std::string key = RandomFileTagKey();
  const std::string hex(64, 'd');
  const std::string tagged = TagDisplayName("x", kFile, hex, 777, key);
  // Copied onto another file: not trusted (hidden all the same).
  DisplayNameInfo info = DecodeDisplayName(tagged, "files/g1-00hs00dc-otherfile000", key);
  EXPECT_EQ(info.source_sha256, "");
  EXPECT_EQ(info.display_name, "x");
  // Another key: not trusted.
  EXPECT_EQ(DecodeDisplayName(tagged, kFile, RandomFileTagKey()).source_sha256, "");
  EXPECT_EQ(DecodeDisplayName(tagged, kFile, "").source_sha256, "");
  // Any edit of the hash, the size or the MAC: not trusted.
  for (std::size_t i = tagged.find("|vg-src=") + 8; i < tagged.size(); ++i) {
    std::string forged = tagged;
    forged[i] = forged[i] == '1' ? '2' : '1';
    EXPECT_EQ(DecodeDisplayName(forged, kFile, key).source_sha256, "") << forged;
  }
  // The unauthenticated tag of earlier versions (what a caller could plant): hidden, never
  // trusted.
  info = DecodeDisplayName("anything|vg-src-sha256=" + hex, kFile, key);
  EXPECT_EQ(info.display_name, "anything");
  EXPECT_EQ(info.source_sha256, "");
}

TEST(DisplayNameTagTest, KeysAndMacs) {
  // RFC 4231 test case 2 (HMAC-SHA256).
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // RFC 4231 test case 6: a key longer than the block is hashed first.
  EXPECT_EQ(HmacSha256Hex(std::string(131, '\xaa'),
                          "Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  // Every replica derives the same key from the same Gemini key; another Gemini key, another.
  EXPECT_EQ(FileTagKeyFrom("k1"), FileTagKeyFrom("k1"));
  EXPECT_NE(FileTagKeyFrom("k1"), FileTagKeyFrom("k2"));
  EXPECT_EQ(FileTagKeyFrom("k1").size(), 32u);
  EXPECT_EQ(FileTagKeyFrom("k1").find("k1"), std::string::npos);
  EXPECT_NE(RandomFileTagKey(), RandomFileTagKey());
  EXPECT_TRUE(ReservedMarkerIn("a|vg-b"));
  EXPECT_FALSE(ReservedMarkerIn("a|vg b"));
}

TEST(DisplayNameTagTest, IsSha256Hex) {
  EXPECT_TRUE(IsSha256Hex(std::string(64, '0')));
  EXPECT_FALSE(IsSha256Hex(std::string(63, '0')));
  EXPECT_FALSE(IsSha256Hex(std::string(64, 'A')));
  EXPECT_FALSE(IsSha256Hex(""));
}

}  // namespace
}  // namespace vision_gateway::vision
