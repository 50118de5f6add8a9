#include "service/image/coco_rle.h"

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::image {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::vision_gateway::testing::IsOk;
using ::vision_gateway::testing::StatusIs;

// An independent reading of pycocotools' format, written from its definition for these tests:
// characters minus 48 are 6-bit groups (5 value bits, 0x20 = another group follows), least
// significant first, sign-extended from bit 4 of the last group; from the fourth value on, the
// value is a difference to the count two places before. Expands to column-major 0/1 pixels.
std::vector<uint8_t> ReferenceDecode(std::string_view s, int height, int width) {
  std::vector<long long> counts;
  size_t p = 0;
  while (p < s.size()) {
    long long value = 0;
    int shift = 0;
    int group = 0;
    do {
      group = s[p++] - 48;
      value += static_cast<long long>(group & 0x1f) << shift;
      shift += 5;
    } while (group & 0x20);
    if (group & 0x10) value -= 1LL << shift;  // negative
    if (counts.size() > 2) value += counts[counts.size() - 2];
    counts.push_back(value);
  }
  std::vector<uint8_t> pixels;
  for (size_t i = 0; i < counts.size(); ++i) pixels.insert(pixels.end(), counts[i], i % 2);
  EXPECT_EQ(pixels.size(), static_cast<size_t>(height) * width);
  return pixels;
}

// Column-major pixels of an image_width x image_height image holding `box` at (bx, by).
std::vector<uint8_t> Materialise(const BinaryMask& box, int bx, int by, int image_width,
                                 int image_height) {
  std::vector<uint8_t> full(static_cast<size_t>(image_width) * image_height, 0);
  for (int y = 0; y < box.height; ++y) {
    for (int x = 0; x < box.width; ++x) {
      const int ix = bx + x, iy = by + y;
      if (ix < 0 || iy < 0 || ix >= image_width || iy >= image_height) continue;
      full[static_cast<size_t>(ix) * image_height + iy] = box.data[y * box.width + x];
    }
  }
  return full;
}

TEST(CocoRleTest, CentrePixelOfThreeByThree) {
  // Column-major: column 0 = 0 0 0, column 1 = 0 1 0, column 2 = 0 0 0 -> runs [4, 1, 4].
  // Each count is < 16 and (first three) not differenced: one group each, '0' + 4, '0' + 1,
  // '0' + 4.
  const std::vector<uint8_t> column_major = {0, 0, 0, 0, 1, 0, 0, 0, 0};
  EXPECT_THAT(RleCountsFromColumnMajor(column_major, 3, 3), ElementsAre(4, 1, 4));
  EXPECT_EQ(EncodeCocoRle(column_major, 3, 3), "414");
  const BinaryMask box{1, 1, {1}};
  EXPECT_EQ(EncodeCocoRle(box, 1, 1, 3, 3), "414");
}

TEST(CocoRleTest, ImageStartingWithASetPixelHasAnEmptyFirstRun) {
  // 4 x 4 all set: runs [0, 16]. 0 -> '0'. 16: c = 16 & 0x1f = 16, x >>= 5 -> 0; bit 0x10 of c
  // is set, so another group is needed unless x == -1: c |= 0x20 -> 48 -> '0' + 48 = '`'; then
  // x = 0: c = 0, done -> '0'. Result "0`0".
  const std::vector<uint8_t> ones(16, 1);
  EXPECT_THAT(RleCountsFromColumnMajor(ones, 4, 4), ElementsAre(0, 16));
  EXPECT_EQ(EncodeCocoRle(ones, 4, 4), "0`0");
}

TEST(CocoRleTest, ColumnMajorOrder) {
  // h = 2, w = 3:  row 0: 1 0 0      column-major: (1, 1), (0, 1), (0, 0)
  //                row 1: 1 1 0   -> 1 1 0 1 0 0 -> runs [0, 2, 1, 1, 2].
  // Counts 0, 2, 1 -> "021". Fourth: 1 - 2 = -1: c = -1 & 0x1f = 31, x >>= 5 -> -1; bit 0x10
  // set and x == -1: done -> 31 + 48 = 'O'. Fifth: 2 - 1 = 1 -> '1'. Result "021O1".
  const BinaryMask row_major{3, 2, {1, 0, 0, 1, 1, 0}};
  EXPECT_THAT(RleCountsFromBoxMask(row_major, 0, 0, 3, 2), ElementsAre(0, 2, 1, 1, 2));
  EXPECT_EQ(EncodeCocoRle(row_major, 0, 0, 3, 2), "021O1");
}

TEST(CocoRleTest, HandComputedCompressedStrings) {
  // [2, 10, 3, 4, 1]: 2 -> '2'; 10 -> ':' (58); 3 -> '3';
  //   4 - 10 = -6: -6 & 0x1f = 26 (0b11010), x >>= 5 -> -1, bit 0x10 set, x == -1: stop
  //   -> 26 + 48 = 74 'J';  1 - 3 = -2: -2 & 0x1f = 30 -> 78 'N'.
  EXPECT_EQ(CompressRleCounts(std::vector<uint32_t>{2, 10, 3, 4, 1}), "2:3JN");
  // [100]: 100 & 0x1f = 4, x = 3, bit 0x10 clear and x != 0: more -> 4 | 0x20 = 36 -> 'T';
  //   3 -> '3'. "T3".
  EXPECT_EQ(CompressRleCounts(std::vector<uint32_t>{100}), "T3");
  // [0, 200, 0, 100]: '0'; 200 = 6 * 32 + 8: 8 | 0x20 = 40 -> 'X', then 6 -> '6'; '0';
  //   100 - 200 = -100: -100 & 0x1f = 28, x >>= 5 -> -4 (floor), bit 0x10 set but x != -1:
  //   more -> 28 | 0x20 = 60 -> 'l'; -4 & 0x1f = 28, x >>= 5 -> -1: stop -> 28 + 48 = 'L'.
  EXPECT_EQ(CompressRleCounts(std::vector<uint32_t>{0, 200, 0, 100}), "0X60lL");
  // The third count is not differenced (pycocotools starts at index 3): [5, 5, 5] -> "555".
  EXPECT_EQ(CompressRleCounts(std::vector<uint32_t>{5, 5, 5}), "555");
  // [1, 1, 20, 20]: 20 = 0b10100: bit 0x10 set, x = 0 != -1: more -> 20 | 0x20 = 52 -> 'd',
  //   then 0 -> '0'; 20 - 1 = 19 -> 'c', '0' likewise: "11d0c0".
  EXPECT_EQ(CompressRleCounts(std::vector<uint32_t>{1, 1, 20, 20}), "11d0c0");
}

TEST(CocoRleTest, DecompressInvertsHandComputedStrings) {
  EXPECT_THAT(*DecompressRleCounts("2:3JN"), ElementsAre(2, 10, 3, 4, 1));
  EXPECT_THAT(*DecompressRleCounts("0X60lL"), ElementsAre(0, 200, 0, 100));
  EXPECT_THAT(*DecompressRleCounts("11d0c0"), ElementsAre(1, 1, 20, 20));
  EXPECT_THAT(*DecompressRleCounts(""), ElementsAre());
}

TEST(CocoRleTest, DecompressRejectsMalformedStrings) {
  const auto invalid = StatusIs(absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(DecompressRleCounts("0`"), invalid);        // ends while 0x20 says more
  EXPECT_THAT(DecompressRleCounts("4!4"), invalid);       // '!' < '0'
  EXPECT_THAT(DecompressRleCounts("4p"), invalid);        // 'p' - 48 = 64 > 0x3f
  EXPECT_THAT(DecompressRleCounts("```````0"), invalid);  // too many groups
  EXPECT_THAT(DecompressRleCounts("O"), invalid);         // -1: a negative count
  EXPECT_THAT(DecodeCocoRle("414", 3, 4), invalid);       // runs add up to 9, not 12
  EXPECT_THAT(DecodeCocoRle("414", 0, 9), invalid);
}

TEST(CocoRleTest, DecodeExpandsColumnMajor) {
  absl::StatusOr<std::vector<uint8_t>> pixels = DecodeCocoRle("021O1", 2, 3);
  ASSERT_THAT(pixels, IsOk());
  EXPECT_THAT(*pixels, ElementsAreArray({1, 1, 0, 1, 0, 0}));
}

TEST(CocoRleTest, AllZeroImageIsOneRun) {
  const BinaryMask empty_box{5, 5, std::vector<uint8_t>(25, 0)};
  EXPECT_THAT(RleCountsFromBoxMask(empty_box, 2, 2, 10, 10), ElementsAre(100));
  EXPECT_EQ(EncodeCocoRle(empty_box, 2, 2, 10, 10), CompressRleCounts(std::vector<uint32_t>{100}));
}

TEST(CocoRleTest, BoxEncodingMatchesTheMaterialisedImage) {
  std::mt19937 rng(12345);
  for (int trial = 0; trial < 300; ++trial) {
    const int image_width = 1 + rng() % 40;
    const int image_height = 1 + rng() % 40;
    BinaryMask box;
    box.width = static_cast<int>(rng() % 20);
    box.height = static_cast<int>(rng() % 20);
    const int density = rng() % 4;  // 0: empty ... 3: mostly set
    for (int i = 0; i < box.width * box.height; ++i) {
      box.data.push_back(static_cast<int>(rng() % 4) < density ? 1 : 0);
    }
    // Positions may put the box partly (or wholly) outside the image.
    const int bx = static_cast<int>(rng() % 50) - 10;
    const int by = static_cast<int>(rng() % 50) - 10;
    const std::vector<uint8_t> full = Materialise(box, bx, by, image_width, image_height);
    const std::string encoded = EncodeCocoRle(box, bx, by, image_width, image_height);
    SCOPED_TRACE(::testing::Message()
                 << "trial " << trial << " image " << image_width << "x" << image_height << " box "
                 << box.width << "x" << box.height << " at " << bx << "," << by);
    EXPECT_EQ(encoded, EncodeCocoRle(full, image_height, image_width));
    EXPECT_EQ(ReferenceDecode(encoded, image_height, image_width), full);
    absl::StatusOr<std::vector<uint8_t>> decoded =
        DecodeCocoRle(encoded, image_height, image_width);
    ASSERT_THAT(decoded, IsOk());
    EXPECT_EQ(*decoded, full);
    int64_t area = 0;
    for (uint8_t v : full) area += v;
    EXPECT_EQ(RleArea(RleCountsFromBoxMask(box, bx, by, image_width, image_height)), area);
  }
}

// The box is transposed in blocks and its columns scanned for changes: boxes larger than a block,
// in any position, with any non-zero value for a set pixel, encode as the whole image does.
TEST(CocoRleTest, LargeBoxesWithAnyNonZeroValueMatchTheMaterialisedImage) {
  std::mt19937 rng(777);
  for (int trial = 0; trial < 60; ++trial) {
    const int image_width = 1 + rng() % 150;
    const int image_height = 1 + rng() % 150;
    BinaryMask box;
    box.width = static_cast<int>(rng() % 100);
    box.height = static_cast<int>(rng() % 100);
    const int density = rng() % 4;
    BinaryMask ones = box;  // the same mask with 1 for every set pixel
    for (int i = 0; i < box.width * box.height; ++i) {
      const bool set = static_cast<int>(rng() % 4) < density;
      box.data.push_back(set ? static_cast<uint8_t>(1 + rng() % 255) : 0);
      ones.data.push_back(set ? 1 : 0);
    }
    const int bx = static_cast<int>(rng() % 200) - 50;
    const int by = static_cast<int>(rng() % 200) - 50;
    SCOPED_TRACE(::testing::Message()
                 << "trial " << trial << " image " << image_width << "x" << image_height << " box "
                 << box.width << "x" << box.height << " at " << bx << "," << by);
    const std::vector<uint8_t> full = Materialise(ones, bx, by, image_width, image_height);
    EXPECT_EQ(RleCountsFromBoxMask(box, bx, by, image_width, image_height),
              RleCountsFromColumnMajor(full, image_height, image_width));
  }
}

TEST(CocoRleTest, LargeImageFromABoxMask) {
  // A 1000 x 800 box in a 4000 x 3000 image, with long runs (differences above 2^15 and
  // negative ones) between the box's columns and the columns outside it.
  BinaryMask box{1000, 800, std::vector<uint8_t>(1000 * 800, 0)};
  for (int y = 0; y < 800; ++y) {
    for (int x = 0; x < 1000; ++x) box.data[y * 1000 + x] = (x / 7 + y / 5) % 3 == 0;
  }
  const std::string encoded = EncodeCocoRle(box, 1500, 1000, 4000, 3000);
  const std::vector<uint8_t> reference = ReferenceDecode(encoded, 3000, 4000);
  ASSERT_EQ(reference.size(), 4000u * 3000u);
  int64_t mismatches = 0;
  for (int x = 0; x < 4000; ++x) {
    for (int y = 0; y < 3000; ++y) {
      const bool in_box = x >= 1500 && x < 2500 && y >= 1000 && y < 1800;
      const uint8_t expected = in_box ? box.data[(y - 1000) * 1000 + (x - 1500)] : 0;
      mismatches += reference[static_cast<size_t>(x) * 3000 + y] != expected;
    }
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(RleArea(RleCountsFromBoxMask(box, 1500, 1000, 4000, 3000)), MaskArea(box));
}

TEST(CocoRleTest, InvalidSizesGiveNoCounts) {
  EXPECT_TRUE(RleCountsFromColumnMajor(std::vector<uint8_t>(5), 2, 3).empty());
  EXPECT_TRUE(RleCountsFromBoxMask(BinaryMask{2, 2, {1}}, 0, 0, 4, 4).empty());
  EXPECT_TRUE(RleCountsFromBoxMask(BinaryMask{}, 0, 0, 0, 4).empty());
  EXPECT_EQ(EncodeCocoRle(BinaryMask{}, 0, 0, 0, 4), "");
}

}  // namespace
}  // namespace vision_gateway::image
