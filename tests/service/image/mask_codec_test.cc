#include "service/image/mask_codec.h"

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/service/image/png_bytes.h"
#include "tests/testing/test_images.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::image {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::vision_gateway::testing::Decode;
using ::vision_gateway::testing::Encode;
using ::vision_gateway::testing::MakePixels;
using ::vision_gateway::testing::Pixels;
using ::vision_gateway::testing::IsOk;
using ::vision_gateway::testing::StatusIs;

std::string Png(const Pixels& p) { return Encode(p, ".png").value_or(""); }

// One row of a 1-pixel-high grey PNG.
std::string RowPng(const std::vector<uint8_t>& values) {
  Pixels p = MakePixels(static_cast<int>(values.size()), 1, 1);
  p.data = values;
  return Png(p);
}

TEST(MaskFromPngTest, ResizesAndThresholdsLeftHalf) {
  // 256 x 256, columns 0..127 = 255 and 128..255 = 0, resized to a 100 x 50 box: the edge
  // falls between output columns 49 and 50 (source x = 128 is output x = 50).
  Pixels p = MakePixels(256, 256, 1, 0);
  for (int y = 0; y < 256; ++y) {
    for (int x = 0; x < 128; ++x) p.at(x, y) = 255;
  }
  absl::StatusOr<BinaryMask> mask = MaskFromPng(Png(p), 100, 50, 0.5);
  ASSERT_THAT(mask, IsOk());
  ASSERT_EQ(mask->width, 100);
  ASSERT_EQ(mask->height, 50);
  ASSERT_EQ(mask->data.size(), 100u * 50u);
  for (int y = 0; y < 50; ++y) {
    for (int x = 0; x < 100; ++x) {
      EXPECT_EQ(mask->data[y * 100 + x], x < 50 ? 1 : 0) << "(" << x << ", " << y << ")";
    }
  }
  EXPECT_EQ(MaskArea(*mask), 50 * 50);
}

TEST(MaskFromPngTest, UpscalesWithCentreAlignedBilinearInterpolation) {
  // Source row [0, 0, 255, 255] -> 8 pixels. Output pixel i samples source position
  // (i + 0.5) * 4 / 8 - 0.5 = 0.5 i - 0.25, clamped to [0, 3]:
  //   i:        0      1     2     3       4       5     6     7
  //   pos:    -0.25  0.25  0.75  1.25    1.75    2.25  2.75  3.25
  //   value:    0      0     0   63.75  191.25   255   255   255
  const std::string png = RowPng({0, 0, 255, 255});
  absl::StatusOr<BinaryMask> half = MaskFromPng(png, 8, 1, 0.5);  // > 127.5
  absl::StatusOr<BinaryMask> low = MaskFromPng(png, 8, 1, 0.2);   // > 51
  absl::StatusOr<BinaryMask> high = MaskFromPng(png, 8, 1, 0.8);  // > 204
  ASSERT_THAT(half, IsOk());
  ASSERT_THAT(low, IsOk());
  ASSERT_THAT(high, IsOk());
  EXPECT_THAT(half->data, ElementsAreArray({0, 0, 0, 0, 1, 1, 1, 1}));
  EXPECT_THAT(low->data, ElementsAreArray({0, 0, 0, 1, 1, 1, 1, 1}));
  EXPECT_THAT(high->data, ElementsAreArray({0, 0, 0, 0, 0, 1, 1, 1}));
}

TEST(MaskFromPngTest, UpscalesVertically) {
  // The same row as a column: the vertical pass uses the same convention.
  Pixels p = MakePixels(1, 4, 1, 0);
  p.at(0, 2) = 255;
  p.at(0, 3) = 255;
  absl::StatusOr<BinaryMask> mask = MaskFromPng(Png(p), 1, 8, 0.5);
  ASSERT_THAT(mask, IsOk());
  EXPECT_THAT(mask->data, ElementsAreArray({0, 0, 0, 0, 1, 1, 1, 1}));
}

TEST(MaskFromPngTest, DownscalingAveragesInsteadOfSkipping) {
  // A 1-pixel line in every 4th column, downscaled 4x: each output pixel covers one line pixel
  // and the line (at 255) contributes about 1/4 of the kernel weight. Point sampling would see
  // all or nothing; the widened triangle kernel sees ~64.
  std::vector<uint8_t> row(64, 0);
  for (int x = 1; x < 64; x += 4) row[x] = 255;
  const std::string png = RowPng(row);
  absl::StatusOr<BinaryMask> above = MaskFromPng(png, 16, 1, 0.15);  // > 38.25
  absl::StatusOr<BinaryMask> below = MaskFromPng(png, 16, 1, 0.35);  // > 89.25
  ASSERT_THAT(above, IsOk());
  ASSERT_THAT(below, IsOk());
  EXPECT_EQ(MaskArea(*above), 16);
  EXPECT_EQ(MaskArea(*below), 0);
}

TEST(MaskFromPngTest, ThresholdIsStrictlyGreater) {
  EXPECT_EQ(MaskArea(*MaskFromPng(Png(MakePixels(4, 4, 1, 128)), 7, 5, 0.5)), 35);
  EXPECT_EQ(MaskArea(*MaskFromPng(Png(MakePixels(4, 4, 1, 127)), 7, 5, 0.5)), 0);
  EXPECT_EQ(MaskArea(*MaskFromPng(Png(MakePixels(4, 4, 1, 255)), 7, 5, 1.0)), 0);
  EXPECT_EQ(MaskArea(*MaskFromPng(Png(MakePixels(4, 4, 1, 1)), 7, 5, 0.0)), 35);
  // 51 / 255 = 0.2 exactly: 51 is not above it, 52 is, despite floating-point rounding.
  EXPECT_EQ(MaskArea(*MaskFromPng(Png(MakePixels(3, 3, 1, 51)), 10, 10, 0.2)), 0);
  EXPECT_EQ(MaskArea(*MaskFromPng(Png(MakePixels(3, 3, 1, 52)), 10, 10, 0.2)), 100);
}

TEST(MaskFromPngTest, UsesTheFirstBandOfColourMasks) {
  for (int bands : {2, 3, 4}) {
    Pixels p = MakePixels(8, 8, bands, 0);
    for (int y = 0; y < 8; ++y) {
      for (int x = 0; x < 4; ++x) p.at(x, y, 0) = 255;  // first band: left half
      for (int x = 4; x < 8; ++x) {
        for (int b = 1; b < bands; ++b) p.at(x, y, b) = 255;  // other bands: right half
      }
    }
    absl::StatusOr<BinaryMask> mask = MaskFromPng(Png(p), 8, 8, 0.5);
    ASSERT_THAT(mask, IsOk()) << bands;
    EXPECT_EQ(MaskArea(*mask), 32) << bands;
    EXPECT_EQ(mask->data[0], 1) << bands;
    EXPECT_EQ(mask->data[7], 0) << bands;
  }
}

TEST(MaskFromPngTest, ScalesSixteenBitMasks) {
  // 65535 -> 255, 32896 (= 128 * 257) -> 128, 32639 (= 127 * 257) -> 127.
  const std::string png = testing::EncodeGrey16Png(3, 1, {65535, 32896, 32639});
  absl::StatusOr<BinaryMask> mask = MaskFromPng(png, 3, 1, 0.5);
  ASSERT_THAT(mask, IsOk());
  EXPECT_THAT(mask->data, ElementsAreArray({1, 1, 0}));
}

TEST(MaskFromPngTest, RejectsBadInput) {
  const std::string good = Png(MakePixels(16, 16, 1, 200));
  ASSERT_THAT(MaskFromPng(good, 4, 4, 0.5), IsOk());
  const auto invalid = StatusIs(absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MaskFromPng("", 4, 4, 0.5), invalid);
  EXPECT_THAT(MaskFromPng("<start_of_mask><seg_35>", 4, 4, 0.5), invalid);
  EXPECT_THAT(MaskFromPng(Encode(MakePixels(16, 16, 3, 200), ".jpg").value(), 4, 4, 0.5),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a PNG")));
  EXPECT_THAT(MaskFromPng(good.substr(0, good.size() - 20), 4, 4, 0.5), invalid);
  EXPECT_THAT(MaskFromPng(good, 0, 4, 0.5), invalid);
  EXPECT_THAT(MaskFromPng(good, 4, -1, 0.5), invalid);
  EXPECT_THAT(MaskFromPng(good, 20000, 20000, 0.5), invalid);
  EXPECT_THAT(MaskFromPng(good, 4, 4, 1.5), invalid);
  EXPECT_THAT(MaskFromPng(good, 4, 4, -0.1), invalid);
  EXPECT_THAT(MaskFromPng(good, 4, 4, std::numeric_limits<double>::quiet_NaN()), invalid);
}

TEST(MaskFromPngTest, RejectsTruncatedNoisyPng) {
  std::string png = Png(testing::NoisePixels(256, 256, 1));
  ASSERT_THAT(MaskFromPng(png, 64, 64, 0.5), IsOk());
  EXPECT_THAT(MaskFromPng(png.substr(0, png.size() / 2), 64, 64, 0.5),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("corrupt or truncated")));
}

// The case above, repeated: libvips 8.14's threadpool sinks lose the decoder's error on about 4%
// of calls for a PNG cut inside its last bytes; the mask decoder must refuse it every time.
TEST(MaskFromPngTest, RejectsAPngMissingItsLastBytesEveryTime) {
  const std::string good = Png(MakePixels(16, 16, 1, 200));
  const std::string cut = good.substr(0, good.size() - 20);
  for (int i = 0; i < 500; ++i) {
    ASSERT_THAT(MaskFromPng(cut, 4, 4, 0.5),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("corrupt or truncated")))
        << "attempt " << i;
  }
}

// 8-bit grey masks (what Gemini sends) are decoded by libpng directly, other kinds by libvips:
// both give every pixel as stored. At the PNG's own size the resampling is the identity, so the
// mask is exactly value > 127. Interlaced (Adam7) and heavily filtered files; cut ones refused.
TEST(MaskFromPngTest, DecodesEveryPixelOfGreyMasksHoweverStored) {
  const Pixels p = testing::NoisePixels(37, 23, 1, 5);
  for (const char* suffix : {".png", ".png[interlace]", ".png[compression=9]", ".png[bitdepth=8]"}) {
    const std::string png = Encode(p, suffix).value_or("");
    ASSERT_FALSE(png.empty()) << suffix;
    absl::StatusOr<BinaryMask> mask = MaskFromPng(png, 37, 23, 0.5);
    ASSERT_THAT(mask, IsOk()) << suffix;
    int wrong = 0;
    for (int y = 0; y < 23; ++y) {
      for (int x = 0; x < 37; ++x) wrong += mask->data[y * 37 + x] != (p.at(x, y) > 127 ? 1 : 0);
    }
    EXPECT_EQ(wrong, 0) << suffix;
    for (size_t cut : {png.size() / 2, png.size() - 20, png.size() - 13}) {
      EXPECT_THAT(MaskFromPng(png.substr(0, cut), 37, 23, 0.5),
                  StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("corrupt or truncated")))
          << suffix << " cut to " << cut << " of " << png.size() << " bytes";
    }
  }
}

// Grey masks are read by png_scan (libdeflate): every filter type gives the pixels back, and a
// mask cut anywhere, with a changed byte in its zlib stream behind a right CRC, with a bad CRC or
// a bad filter type, is refused.
TEST(MaskFromPngTest, DecodesGreyMasksOfEveryFilterType) {
  const testing::Pixels p = testing::NoisePixels(29, 17, 1, 9);
  for (int first = 0; first < 5; ++first) {
    const std::string png = testing::HandMadePng(
        29, 17, 0,
        testing::Deflate(testing::FilterScanlines(p.data, 29, 17, 1,
                                                  [&](int y) { return (first + y) % 5; })));
    absl::StatusOr<BinaryMask> mask = MaskFromPng(png, 29, 17, 0.5);
    ASSERT_THAT(mask, IsOk()) << first;
    int wrong = 0;
    for (int y = 0; y < 17; ++y) {
      for (int x = 0; x < 29; ++x) wrong += mask->data[y * 29 + x] != (p.at(x, y) > 127 ? 1 : 0);
    }
    EXPECT_EQ(wrong, 0) << "first filter " << first;
  }
}

TEST(MaskFromPngTest, RejectsBadGreyMasks) {
  const auto corrupt =
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("PNG is corrupt or truncated"));
  const std::string png = Png(testing::NoisePixels(64, 64, 1, 3));
  ASSERT_THAT(MaskFromPng(png, 20, 30, 0.5), IsOk());
  for (int i = 1; i < 20; ++i) {
    const size_t cut = png.size() * i / 20;
    EXPECT_THAT(MaskFromPng(png.substr(0, cut), 20, 30, 0.5), StatusIs(absl::StatusCode::kInvalidArgument))
        << "cut to " << cut;
  }
  for (size_t cut : {png.size() - 1, png.size() - 12}) {
    EXPECT_THAT(MaskFromPng(png.substr(0, cut), 20, 30, 0.5), corrupt) << "cut to " << cut;
  }
  std::vector<testing::PngChunk> chunks = testing::SplitPng(png);
  const std::string data = testing::ImageData(chunks);
  for (size_t at = 0; at < data.size(); at += data.size() / 10 + 1) {
    std::string bad = data;
    bad[at] = static_cast<char>(bad[at] ^ 0x04);
    EXPECT_THAT(MaskFromPng(testing::JoinPng(testing::WithImageData(chunks, bad)), 20, 30, 0.5),
                corrupt)
        << "byte " << at << " of the zlib stream changed";
  }
  for (testing::PngChunk& c : chunks) c.bad_crc = c.type == "IDAT";
  EXPECT_THAT(MaskFromPng(testing::JoinPng(chunks), 20, 30, 0.5), corrupt);
  const std::string bad_filter = testing::HandMadePng(
      8, 4, 0,
      testing::Deflate(testing::FilterScanlines(std::vector<uint8_t>(32, 200), 8, 4, 1,
                                                [](int y) { return y == 2 ? 7 : 0; })));
  EXPECT_THAT(MaskFromPng(bad_filter, 8, 4, 0.5), corrupt);
}

TEST(MaskFromPngTest, RejectsHugePngFromItsHeader) {
  EXPECT_THAT(MaskFromPng(testing::PngHeaderOnly(5000, 5000), 10, 10, 0.5),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("5000x5000")));
}

TEST(EncodeMaskPngTest, WritesEightBitGreyZeroAnd255) {
  BinaryMask mask{3, 2, {1, 0, 1, 0, 0, 1}};
  const std::string png = EncodeMaskPng(mask);
  ASSERT_FALSE(png.empty());
  ASSERT_TRUE(png.starts_with("\x89PNG"));
  // IHDR: bit depth at byte 24, colour type at byte 25 (0 = greyscale).
  EXPECT_EQ(static_cast<unsigned char>(png[24]), 8);
  EXPECT_EQ(static_cast<unsigned char>(png[25]), 0);
  const testing::Decoded d = Decode(png);
  EXPECT_EQ(d.pixels.width, 3);
  EXPECT_EQ(d.pixels.height, 2);
  EXPECT_EQ(d.pixels.bands, 1);
  EXPECT_THAT(d.pixels.data, ElementsAreArray({255, 0, 255, 0, 0, 255}));
}

TEST(EncodeMaskPngTest, RoundTripsThroughMaskFromPng) {
  std::mt19937 rng(3);
  BinaryMask mask{37, 23, std::vector<uint8_t>(37 * 23)};
  for (uint8_t& v : mask.data) v = rng() % 2;
  absl::StatusOr<BinaryMask> back = MaskFromPng(EncodeMaskPng(mask), 37, 23, 0.5);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->data, mask.data);
}

TEST(EncodeMaskPngTest, ReturnsEmptyForInvalidMasks) {
  EXPECT_EQ(EncodeMaskPng(BinaryMask{}), "");
  EXPECT_EQ(EncodeMaskPng(BinaryMask{2, 2, {1, 0, 1}}), "");
}

TEST(MaskAreaTest, CountsSetPixels) {
  EXPECT_EQ(MaskArea(BinaryMask{}), 0);
  EXPECT_EQ(MaskArea(BinaryMask{2, 2, {1, 0, 1, 1}}), 3);
}

}  // namespace
}  // namespace vision_gateway::image
