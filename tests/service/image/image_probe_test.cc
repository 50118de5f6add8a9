#include "service/image/image_probe.h"

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/service/image/png_bytes.h"
#include "tests/testing/test_images.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::image {
namespace {

using ::testing::HasSubstr;
using ::testing::StrEq;
using ::vision_gateway::testing::Decode;
using ::vision_gateway::testing::Encode;
using ::vision_gateway::testing::MakePixels;
using ::vision_gateway::testing::NoisePixels;
using ::vision_gateway::testing::Pixels;
using ::vision_gateway::testing::IsOk;
using ::vision_gateway::testing::StatusIs;

constexpr char kUnsupported[] =
    "unsupported image type; supported: image/png, image/jpeg, image/webp, image/heic, image/heif";

std::string MustEncode(const Pixels& p, std::string_view suffix, int orientation = 0) {
  std::optional<std::string> bytes = Encode(p, suffix, orientation);
  EXPECT_TRUE(bytes.has_value()) << "libvips cannot write " << suffix;
  return bytes.value_or("");
}

// An ISO BMFF file start: an 'ftyp' box with the given brands, then a few filler bytes.
std::string Ftyp(std::string_view major, std::vector<std::string_view> compatible) {
  const uint32_t size = 16 + 4 * static_cast<uint32_t>(compatible.size());
  std::string out;
  for (int shift : {24, 16, 8, 0}) out.push_back(static_cast<char>(size >> shift));
  out += "ftyp";
  out += major;
  out += std::string(4, '\0');  // minor version
  for (std::string_view b : compatible) out += b;
  out += std::string(16, '\0');
  return out;
}

TEST(SniffFormatTest, RecognisesImagesWrittenByLibvips) {
  const Pixels p = NoisePixels(16, 8, 3);
  EXPECT_EQ(*SniffFormat(MustEncode(p, ".png")), ImageFormat::kPng);
  EXPECT_EQ(*SniffFormat(MustEncode(p, ".jpg")), ImageFormat::kJpeg);
  EXPECT_EQ(*SniffFormat(MustEncode(p, ".webp")), ImageFormat::kWebp);
}

TEST(SniffFormatTest, RecognisesHeicWrittenByLibvips) {
  std::optional<std::string> heic = Encode(NoisePixels(16, 8, 3), ".heic");
  if (!heic.has_value()) GTEST_SKIP() << "this libvips has no HEIF (HEVC) encoder";
  EXPECT_EQ(*SniffFormat(*heic), ImageFormat::kHeic);
}

TEST(SniffFormatTest, ClassifiesIsoBmffBrands) {
  EXPECT_EQ(*SniffFormat(Ftyp("heic", {"mif1", "heic"})), ImageFormat::kHeic);
  EXPECT_EQ(*SniffFormat(Ftyp("heix", {})), ImageFormat::kHeic);
  EXPECT_EQ(*SniffFormat(Ftyp("hevc", {"msf1"})), ImageFormat::kHeic);
  EXPECT_EQ(*SniffFormat(Ftyp("mif1", {"miaf", "heic"})), ImageFormat::kHeic);
  EXPECT_EQ(*SniffFormat(Ftyp("mif1", {"miaf"})), ImageFormat::kHeif);
  EXPECT_EQ(*SniffFormat(Ftyp("msf1", {})), ImageFormat::kHeif);
  EXPECT_EQ(*SniffFormat(Ftyp("heif", {})), ImageFormat::kHeif);
  // AVIF uses the same container and lists mif1, but Gemini does not take it.
  EXPECT_THAT(SniffFormat(Ftyp("avif", {"avif", "mif1", "miaf"})),
              StatusIs(absl::StatusCode::kInvalidArgument, StrEq(kUnsupported)));
  // An MP4 video.
  EXPECT_THAT(SniffFormat(Ftyp("isom", {"isom", "iso2", "mp41"})),
              StatusIs(absl::StatusCode::kInvalidArgument, StrEq(kUnsupported)));
}

TEST(SniffFormatTest, RejectsAvifWrittenByLibvips) {
  std::optional<std::string> avif = Encode(NoisePixels(16, 8, 3), ".avif");
  if (!avif.has_value()) GTEST_SKIP() << "this libvips has no AV1 encoder";
  EXPECT_THAT(SniffFormat(*avif),
              StatusIs(absl::StatusCode::kInvalidArgument, StrEq(kUnsupported)));
}

TEST(SniffFormatTest, RejectsEmptyInput) {
  EXPECT_THAT(SniffFormat(""),
              StatusIs(absl::StatusCode::kInvalidArgument, StrEq("image is empty")));
}

TEST(SniffFormatTest, RejectsOtherTypes) {
  for (std::string_view bytes :
       {std::string_view("GIF89a\x01\x00\x01\x00", 10), std::string_view("%PDF-1.7\n"),
        std::string_view("RIFF\0\0\0\0WAVE", 12), std::string_view("\x89PNG", 4),
        std::string_view("\xff\xd8", 2), std::string_view("BM"), std::string_view("hello")}) {
    EXPECT_THAT(SniffFormat(bytes),
                StatusIs(absl::StatusCode::kInvalidArgument, StrEq(kUnsupported)))
        << bytes;
  }
}

TEST(SniffFormatTest, RejectsRandomBytes) {
  std::mt19937 rng(42);
  for (int i = 0; i < 100; ++i) {
    std::string bytes(64, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    if (bytes.starts_with("\xff\xd8\xff")) continue;  // 1 in 16M: a plausible JPEG start
    EXPECT_THAT(SniffFormat(bytes), StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

TEST(MimeTypeOfTest, NamesEveryFormat) {
  EXPECT_EQ(MimeTypeOf(ImageFormat::kPng), "image/png");
  EXPECT_EQ(MimeTypeOf(ImageFormat::kJpeg), "image/jpeg");
  EXPECT_EQ(MimeTypeOf(ImageFormat::kWebp), "image/webp");
  EXPECT_EQ(MimeTypeOf(ImageFormat::kHeic), "image/heic");
  EXPECT_EQ(MimeTypeOf(ImageFormat::kHeif), "image/heif");
}

TEST(ProbeSizeTest, ReadsTheHeader) {
  absl::StatusOr<ImageSize> size = ProbeSize(MustEncode(NoisePixels(40, 20, 3), ".png"));
  ASSERT_THAT(size, IsOk());
  EXPECT_EQ(size->width, 40);
  EXPECT_EQ(size->height, 20);
}

TEST(ProbeSizeTest, ReportsTheUprightSize) {
  absl::StatusOr<ImageSize> size = ProbeSize(MustEncode(NoisePixels(40, 20, 3), ".jpg", 6));
  ASSERT_THAT(size, IsOk());
  EXPECT_EQ(size->width, 20);
  EXPECT_EQ(size->height, 40);
}

TEST(ProbeSizeTest, DoesNotDecodeDeclaredPixels) {
  // 100000 x 100000 RGB would be 30 GB: only the header is read.
  absl::StatusOr<ImageSize> size = ProbeSize(testing::PngHeaderOnly(100000, 100000));
  ASSERT_THAT(size, IsOk());
  EXPECT_EQ(size->width, 100000);
  EXPECT_EQ(size->height, 100000);
}

TEST(ProbeSizeTest, RejectsGarbageAfterAMagicNumber) {
  std::string bytes("\x89PNG\r\n\x1a\n", 8);
  bytes += std::string(100, 'x');
  EXPECT_THAT(ProbeSize(bytes), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("image data is corrupt or truncated (")));
  EXPECT_THAT(ProbeSize(""), StatusIs(absl::StatusCode::kInvalidArgument, StrEq("image is empty")));
}

TEST(PrepareImageTest, PassesAnUprightImageThroughWithoutCopying) {
  std::string png = MustEncode(NoisePixels(64, 32, 3), ".png");
  const std::string original = png;
  const char* const data = png.data();
  absl::StatusOr<PreparedImage> prepared = PrepareImage(std::move(png));
  ASSERT_THAT(prepared, IsOk());
  EXPECT_FALSE(prepared->reencoded);
  EXPECT_EQ(prepared->bytes, original);
  EXPECT_EQ(prepared->bytes.data(), data) << "the input buffer should be moved, not copied";
  EXPECT_EQ(prepared->format, ImageFormat::kPng);
  EXPECT_EQ(prepared->source_format, ImageFormat::kPng);
  EXPECT_EQ(prepared->mime_type, "image/png");
  EXPECT_EQ(prepared->orientation, 1);
  EXPECT_EQ(prepared->width, 64);
  EXPECT_EQ(prepared->height, 32);
  EXPECT_EQ(prepared->sent_width, 64);
  EXPECT_EQ(prepared->sent_height, 32);
}

TEST(PrepareImageTest, PassesJpegAndWebpThrough) {
  for (std::string_view suffix : {".jpg", ".webp"}) {
    const std::string bytes = MustEncode(NoisePixels(30, 50, 3), suffix);
    absl::StatusOr<PreparedImage> prepared = PrepareImage(bytes);
    ASSERT_THAT(prepared, IsOk()) << suffix;
    EXPECT_FALSE(prepared->reencoded);
    EXPECT_EQ(prepared->bytes, bytes);
    EXPECT_EQ(prepared->mime_type, suffix == ".jpg" ? "image/jpeg" : "image/webp");
    EXPECT_EQ(prepared->width, 30);
    EXPECT_EQ(prepared->height, 50);
  }
}

TEST(PrepareImageTest, PassesHeicThrough) {
  std::optional<std::string> heic = Encode(NoisePixels(64, 48, 3), ".heic");
  if (!heic.has_value()) GTEST_SKIP() << "this libvips has no HEIF (HEVC) encoder";
  absl::StatusOr<PreparedImage> prepared = PrepareImage(*heic);
  ASSERT_THAT(prepared, IsOk());
  EXPECT_FALSE(prepared->reencoded);
  EXPECT_EQ(prepared->mime_type, "image/heic");
  EXPECT_EQ(prepared->width, 64);
  EXPECT_EQ(prepared->height, 48);
}

TEST(PrepareImageTest, DownscalesHeicToPng) {
  std::optional<std::string> heic = Encode(NoisePixels(64, 48, 3), ".heic");
  if (!heic.has_value()) GTEST_SKIP() << "this libvips has no HEIF (HEVC) encoder";
  absl::StatusOr<PreparedImage> prepared = PrepareImage(*heic, {.max_dimension = 32});
  ASSERT_THAT(prepared, IsOk());
  EXPECT_TRUE(prepared->reencoded);
  EXPECT_EQ(prepared->source_format, ImageFormat::kHeic);
  EXPECT_EQ(prepared->mime_type, "image/png");
  EXPECT_EQ(prepared->sent_width, 32);
  EXPECT_EQ(prepared->sent_height, 24);
  EXPECT_EQ(Decode(prepared->bytes).pixels.width, 32);
}

// EXIF orientation n says how the stored pixels map to what a viewer shows. An upright W x H
// image U with a bright marker in its top-left corner is stored as S so that a viewer applying
// orientation n to S shows U. From the EXIF definitions ("row 0 is the visual <side>, column 0
// is the visual <side>"), upright pixel (u, v) is stored at:
//   1: (u, v)                 row 0 = top,    column 0 = left    (S is W x H)
//   2: (W-1-u, v)             row 0 = top,    column 0 = right
//   3: (W-1-u, H-1-v)         row 0 = bottom, column 0 = right
//   4: (u, H-1-v)             row 0 = bottom, column 0 = left
//   5: (v, u)                 row 0 = left,   column 0 = top    (S is H x W)
//   6: (v, W-1-u)             row 0 = right,  column 0 = top
//   7: (H-1-v, W-1-u)         row 0 = right,  column 0 = bottom
//   8: (H-1-v, u)             row 0 = left,   column 0 = bottom
// With W != H and one marked corner, each of the 8 cases lands the marker in a different place
// of a differently shaped S, so only the right rotation/flip brings it back to the top-left.
class OrientationTest : public ::testing::TestWithParam<int> {};

constexpr int kUprightWidth = 64;
constexpr int kUprightHeight = 32;
constexpr int kMarker = 16;

std::pair<int, int> StoredPosition(int orientation, int u, int v) {
  const int w = kUprightWidth, h = kUprightHeight;
  switch (orientation) {
    case 2:
      return {w - 1 - u, v};
    case 3:
      return {w - 1 - u, h - 1 - v};
    case 4:
      return {u, h - 1 - v};
    case 5:
      return {v, u};
    case 6:
      return {v, w - 1 - u};
    case 7:
      return {h - 1 - v, w - 1 - u};
    case 8:
      return {h - 1 - v, u};
    default:
      return {u, v};
  }
}

double MeanOfSquare(const Pixels& p, int x0, int y0, int size) {
  double sum = 0;
  for (int y = y0; y < y0 + size; ++y) {
    for (int x = x0; x < x0 + size; ++x) sum += p.at(x, y, 0);
  }
  return sum / (size * size);
}

TEST_P(OrientationTest, ReturnsUprightPixelsAndSize) {
  const int orientation = GetParam();
  const bool swapped = orientation >= 5;
  Pixels stored = MakePixels(swapped ? kUprightHeight : kUprightWidth,
                             swapped ? kUprightWidth : kUprightHeight, 1, 0);
  for (int v = 0; v < kMarker; ++v) {
    for (int u = 0; u < kMarker; ++u) {
      auto [x, y] = StoredPosition(orientation, u, v);
      stored.at(x, y) = 255;
    }
  }
  const std::string jpeg = MustEncode(stored, ".jpg", orientation);
  ASSERT_EQ(Decode(jpeg).orientation, orientation) << "test setup: EXIF orientation not written";

  absl::StatusOr<PreparedImage> prepared = PrepareImage(jpeg);
  ASSERT_THAT(prepared, IsOk());
  EXPECT_EQ(prepared->orientation, orientation);
  EXPECT_EQ(prepared->width, kUprightWidth);
  EXPECT_EQ(prepared->height, kUprightHeight);
  EXPECT_EQ(prepared->sent_width, kUprightWidth);
  EXPECT_EQ(prepared->sent_height, kUprightHeight);
  EXPECT_EQ(prepared->reencoded, orientation != 1);
  EXPECT_EQ(prepared->mime_type, "image/jpeg");

  const testing::Decoded sent = Decode(prepared->bytes);
  EXPECT_EQ(sent.orientation, 1) << "the sent image must not be rotated again by the receiver";
  ASSERT_EQ(sent.pixels.width, kUprightWidth);
  ASSERT_EQ(sent.pixels.height, kUprightHeight);
  const Pixels& p = sent.pixels;
  EXPECT_GT(MeanOfSquare(p, 0, 0, kMarker), 200) << "marker not at the top-left";
  EXPECT_LT(MeanOfSquare(p, kUprightWidth - kMarker, 0, kMarker), 50);
  EXPECT_LT(MeanOfSquare(p, 0, kUprightHeight - kMarker, kMarker), 50);
  EXPECT_LT(MeanOfSquare(p, kUprightWidth - kMarker, kUprightHeight - kMarker, kMarker), 50);
}

INSTANTIATE_TEST_SUITE_P(AllOrientations, OrientationTest, ::testing::Range(1, 9));

TEST(PrepareImageTest, RotatesWebpUprightAndSendsPng) {
  // Stored 32 wide x 64 high with orientation 6 (rotate 90 clockwise to view): upright 64 x 32.
  Pixels stored = MakePixels(32, 64, 3, 0);
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 16; ++x) {
      auto [sx, sy] = StoredPosition(6, x, y);
      for (int b = 0; b < 3; ++b) stored.at(sx, sy, b) = 255;
    }
  }
  const std::string webp = MustEncode(stored, ".webp", 6);
  ASSERT_EQ(Decode(webp).orientation, 6) << "test setup: EXIF orientation not written";
  absl::StatusOr<PreparedImage> prepared = PrepareImage(webp);
  ASSERT_THAT(prepared, IsOk());
  EXPECT_TRUE(prepared->reencoded);
  EXPECT_EQ(prepared->mime_type, "image/png");
  EXPECT_EQ(prepared->format, ImageFormat::kPng);
  EXPECT_EQ(prepared->width, 64);
  EXPECT_EQ(prepared->height, 32);
  const testing::Decoded sent = Decode(prepared->bytes);
  ASSERT_EQ(sent.pixels.width, 64);
  ASSERT_EQ(sent.pixels.height, 32);
  EXPECT_GT(MeanOfSquare(sent.pixels, 0, 0, 16), 200);
  EXPECT_LT(MeanOfSquare(sent.pixels, 48, 16, 16), 50);
}

TEST(PrepareImageTest, RefusesMorePixelsThanTheLimitFromTheHeader) {
  const std::string png = MustEncode(NoisePixels(100, 100, 3), ".png");
  EXPECT_THAT(PrepareImage(png, {.max_pixels = 9999}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StrEq("image is 100x100 pixels; the limit is 9999")));
  EXPECT_THAT(PrepareImage(png, {.max_pixels = 10000}), IsOk());
}

TEST(PrepareImageTest, RefusesPngDecompressionBomb) {
  // The header declares 100000 x 100000; there is no pixel data. Refused by the default limit
  // before any decoding (decoding would fail differently: "corrupt or truncated").
  EXPECT_THAT(PrepareImage(testing::PngHeaderOnly(100000, 100000)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StrEq("image is 100000x100000 pixels; the limit is 50000000")));
}

TEST(PrepareImageTest, RefusesJpegDecompressionBomb) {
  const std::string bomb =
      testing::PatchJpegSize(MustEncode(NoisePixels(16, 16, 3), ".jpg"), 60000, 50000);
  EXPECT_THAT(PrepareImage(bomb),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StrEq("image is 60000x50000 pixels; the limit is 50000000")));
}

TEST(PrepareImageTest, RejectsPngCutInHalf) {
  const std::string png = MustEncode(NoisePixels(256, 256, 3), ".png");
  ASSERT_THAT(PrepareImage(png), IsOk());
  EXPECT_THAT(PrepareImage(png.substr(0, png.size() / 2)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("image data is corrupt or truncated (")));
}

TEST(PrepareImageTest, RejectsJpegCutInHalf) {
  const std::string jpeg = MustEncode(NoisePixels(256, 256, 3), ".jpg");
  ASSERT_THAT(PrepareImage(jpeg), IsOk());
  EXPECT_THAT(PrepareImage(jpeg.substr(0, jpeg.size() / 2)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("image data is corrupt or truncated (")));
}

// A JPEG passed through unchanged is checked by a scaled decode (shrink-on-load), which must still
// read every block's entropy-coded data: a file cut anywhere in its data is refused as a full
// decode refuses it. Baseline and progressive; heights that 8 divides (with widths it does not:
// libvips rounds a shrunk size down) and heights that no scale divides (checked at full size).
TEST(PrepareImageTest, RejectsJpegsCutAnywhereOnTheScaledCheck) {
  const auto truncated = StatusIs(absl::StatusCode::kInvalidArgument,
                                  HasSubstr("image data is corrupt or truncated ("));
  for (std::string_view suffix : {".jpg", ".jpg[interlace]"}) {
    for (const auto& [width, height] :
         {std::pair{512, 384}, std::pair{333, 136}, std::pair{333, 129}, std::pair{60, 36}}) {
      const std::string jpeg = MustEncode(NoisePixels(width, height, 3), suffix);
      ASSERT_THAT(PrepareImage(jpeg), IsOk()) << suffix << " " << width << "x" << height;
      for (int percent : {20, 50, 80, 95, 99}) {
        EXPECT_THAT(PrepareImage(jpeg.substr(0, jpeg.size() * percent / 100)), truncated)
            << suffix << " " << width << "x" << height << " cut at " << percent << "%";
      }
    }
  }
}

TEST(PrepareImageTest, PassesTinyJpegsThrough) {
  for (int side : {1, 3, 7, 9}) {
    const std::string jpeg = MustEncode(NoisePixels(side, side + 1, 3), ".jpg");
    absl::StatusOr<PreparedImage> prepared = PrepareImage(jpeg);
    ASSERT_THAT(prepared, IsOk()) << side;
    EXPECT_FALSE(prepared->reencoded);
    EXPECT_EQ(prepared->width, side);
    EXPECT_EQ(prepared->height, side + 1);
  }
}

TEST(PrepareImageTest, RejectsWebpCutInHalf) {
  const std::string webp = MustEncode(NoisePixels(256, 256, 3), ".webp");
  EXPECT_THAT(PrepareImage(webp.substr(0, webp.size() / 2)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("image data is corrupt or truncated (")));
}

TEST(PrepareImageTest, RejectsTruncatedImagesThatWouldBeReencoded) {
  const std::string rotated = MustEncode(NoisePixels(256, 128, 3), ".jpg", 6);
  EXPECT_THAT(PrepareImage(rotated.substr(0, rotated.size() / 2)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("image data is corrupt or truncated (")));
  const std::string png = MustEncode(NoisePixels(256, 256, 3), ".png");
  EXPECT_THAT(PrepareImage(png.substr(0, png.size() / 2), {.max_dimension = 64}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("image data is corrupt or truncated (")));
  const std::string jpeg = MustEncode(NoisePixels(256, 256, 3), ".jpg");
  EXPECT_THAT(PrepareImage(jpeg.substr(0, jpeg.size() / 2), {.max_dimension = 64}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("image data is corrupt or truncated (")));
}

// A small PNG missing only its last 20 bytes (IEND and the end of IDAT) decodes every row but
// one, so the decoder's error comes from the last work unit. libvips 8.14's threadpool sinks lose
// such an error now and then (about 4% of calls here); the gateway must refuse it every time, on
// the pass-through path and on both re-encoding paths.
TEST(PrepareImageTest, RejectsAPngMissingItsLastBytesEveryTime) {
  const std::string png = MustEncode(MakePixels(16, 16, 1, 200), ".png");
  const std::string cut = png.substr(0, png.size() - 20);
  const std::string rotated = MustEncode(NoisePixels(24, 16, 3), ".jpg", 6);
  const std::string rotated_cut = rotated.substr(0, rotated.size() - 20);
  ASSERT_THAT(PrepareImage(png), IsOk());
  ASSERT_THAT(PrepareImage(rotated), IsOk());
  const auto truncated = StatusIs(absl::StatusCode::kInvalidArgument,
                                  HasSubstr("image data is corrupt or truncated ("));
  for (int i = 0; i < 100; ++i) {
    ASSERT_THAT(PrepareImage(cut), truncated) << "pass-through, attempt " << i;
    ASSERT_THAT(PrepareImage(cut, {.max_dimension = 8}), truncated) << "downscale, attempt " << i;
    ASSERT_THAT(PrepareImage(rotated_cut), truncated) << "rotation, attempt " << i;
  }
}

// A PNG sent on unchanged is checked without libvips (png_scan.h): inflated whole when it is
// small, in pieces by zlib when its image data is over 4 MiB (the 1200x1200 RGB one). Cut
// anywhere, or with a changed byte in its zlib stream behind a right CRC, it is refused.
TEST(PrepareImageTest, RejectsPngsCutOrCorruptAnywhere) {
  const auto truncated = StatusIs(absl::StatusCode::kInvalidArgument,
                                  HasSubstr("image data is corrupt or truncated ("));
  for (const auto& [width, height, suffix] :
       {std::tuple{64, 48, ".png"}, std::tuple{64, 48, ".png[interlace]"},
        std::tuple{1200, 1200, ".png"}}) {
    const std::string png = MustEncode(NoisePixels(width, height, 3), suffix);
    const std::string what = std::to_string(width) + "x" + std::to_string(height) + suffix;
    ASSERT_THAT(PrepareImage(png), IsOk()) << what;
    for (size_t cut : {png.size() * 1 / 10, png.size() * 3 / 10, png.size() / 2,
                       png.size() * 9 / 10, png.size() - 100, png.size() - 13, png.size() - 12,
                       png.size() - 1}) {
      EXPECT_THAT(PrepareImage(png.substr(0, cut)), truncated) << what << " cut to " << cut;
    }
    const std::vector<testing::PngChunk> chunks = testing::SplitPng(png);
    const std::string data = testing::ImageData(chunks);
    for (size_t at : {size_t{2}, data.size() / 3, data.size() / 2, data.size() - 2}) {
      std::string bad = data;
      bad[at] = static_cast<char>(bad[at] ^ 0x01);
      EXPECT_THAT(PrepareImage(testing::JoinPng(testing::WithImageData(chunks, bad, 8192))),
                  truncated)
          << what << " with byte " << at << " of its zlib stream changed";
    }
  }
}

// EXIF in a PNG (an eXIf chunk) may turn it: such a PNG goes the libvips way and is sent upright.
TEST(PrepareImageTest, RotatesAPngWithExifOrientation) {
  std::vector<testing::PngChunk> chunks =
      testing::SplitPng(MustEncode(NoisePixels(32, 16, 3), ".png"));
  // TIFF, big-endian: one IFD with one entry, Orientation (0x0112) SHORT = 6; no next IFD.
  const std::string exif("MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0", 26);
  chunks.insert(chunks.begin() + 1, testing::PngChunk{"eXIf", exif});
  const std::string png = testing::JoinPng(chunks);
  ASSERT_EQ(Decode(png).orientation, 6) << "test setup: libvips reads no EXIF orientation";
  absl::StatusOr<PreparedImage> prepared = PrepareImage(png);
  ASSERT_THAT(prepared, IsOk());
  EXPECT_TRUE(prepared->reencoded);
  EXPECT_EQ(prepared->orientation, 6);
  EXPECT_EQ(prepared->width, 16);
  EXPECT_EQ(prepared->height, 32);
}

TEST(PrepareImageTest, SkipsThePixelCheckWhenAskedTo) {
  // verify_pixels = false trades the corruption check for speed on pass-through images: the
  // header is intact, so the cut file is passed on.
  const std::string png = MustEncode(NoisePixels(256, 256, 3), ".png");
  absl::StatusOr<PreparedImage> prepared =
      PrepareImage(png.substr(0, png.size() / 2), {.verify_pixels = false});
  ASSERT_THAT(prepared, IsOk());
  EXPECT_FALSE(prepared->reencoded);
}

TEST(PrepareImageTest, RejectsEmptyAndUnsupportedInput) {
  EXPECT_THAT(PrepareImage(""),
              StatusIs(absl::StatusCode::kInvalidArgument, StrEq("image is empty")));
  EXPECT_THAT(PrepareImage("GIF89a......"),
              StatusIs(absl::StatusCode::kInvalidArgument, StrEq(kUnsupported)));
  std::mt19937 rng(7);
  std::string random(4096, '\0');
  for (char& c : random) c = static_cast<char>(rng());
  random[0] = 'x';  // make sure it is not a JPEG start
  EXPECT_THAT(PrepareImage(random),
              StatusIs(absl::StatusCode::kInvalidArgument, StrEq(kUnsupported)));
}

TEST(PrepareImageTest, RejectsRandomBytesBehindEachMagicNumber) {
  std::mt19937 rng(11);
  for (std::string_view magic :
       {std::string_view("\x89PNG\r\n\x1a\n", 8), std::string_view("\xff\xd8\xff"),
        std::string_view("RIFF\x10\x00\x00\x00WEBPVP8 ", 16)}) {
    std::string bytes(magic);
    for (int i = 0; i < 2048; ++i) bytes.push_back(static_cast<char>(rng()));
    EXPECT_THAT(PrepareImage(bytes), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("image data is corrupt or truncated (")));
  }
  std::string heif = Ftyp("heic", {"mif1"});
  for (int i = 0; i < 2048; ++i) heif.push_back(static_cast<char>(rng()));
  EXPECT_THAT(PrepareImage(heif), StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("image data is corrupt or truncated (")));
}

TEST(PrepareImageTest, DownscalesToMaxDimensionKeepingAspect) {
  absl::StatusOr<PreparedImage> prepared =
      PrepareImage(MustEncode(NoisePixels(400, 200, 3), ".png"), {.max_dimension = 100});
  ASSERT_THAT(prepared, IsOk());
  EXPECT_TRUE(prepared->reencoded);
  EXPECT_EQ(prepared->mime_type, "image/png");
  EXPECT_EQ(prepared->width, 400);
  EXPECT_EQ(prepared->height, 200);
  EXPECT_EQ(prepared->sent_width, 100);
  EXPECT_EQ(prepared->sent_height, 50);
  const testing::Decoded sent = Decode(prepared->bytes);
  EXPECT_EQ(sent.pixels.width, 100);
  EXPECT_EQ(sent.pixels.height, 50);
}

TEST(PrepareImageTest, DownscalesJpegToJpeg) {
  absl::StatusOr<PreparedImage> prepared =
      PrepareImage(MustEncode(NoisePixels(300, 600, 3), ".jpg"), {.max_dimension = 150});
  ASSERT_THAT(prepared, IsOk());
  EXPECT_TRUE(prepared->reencoded);
  EXPECT_EQ(prepared->mime_type, "image/jpeg");
  EXPECT_EQ(prepared->sent_width, 75);
  EXPECT_EQ(prepared->sent_height, 150);
  EXPECT_EQ(Decode(prepared->bytes).pixels.height, 150);
}

TEST(PrepareImageTest, DownscalesTheUprightImage) {
  // Stored 200 x 100 with orientation 6: upright 100 x 200, so the longer side is the height.
  absl::StatusOr<PreparedImage> prepared =
      PrepareImage(MustEncode(NoisePixels(200, 100, 3), ".jpg", 6), {.max_dimension = 50});
  ASSERT_THAT(prepared, IsOk());
  EXPECT_EQ(prepared->width, 100);
  EXPECT_EQ(prepared->height, 200);
  EXPECT_EQ(prepared->sent_width, 25);
  EXPECT_EQ(prepared->sent_height, 50);
}

TEST(PrepareImageTest, DoesNotTouchImagesWithinMaxDimension) {
  const std::string png = MustEncode(NoisePixels(100, 60, 3), ".png");
  absl::StatusOr<PreparedImage> prepared = PrepareImage(png, {.max_dimension = 100});
  ASSERT_THAT(prepared, IsOk());
  EXPECT_FALSE(prepared->reencoded);
  EXPECT_EQ(prepared->bytes, png);
}

TEST(PrepareImageTest, PrintsNothingForBadImages) {
  const std::string jpeg = MustEncode(NoisePixels(256, 256, 3), ".jpg");
  const std::string cut = jpeg.substr(0, jpeg.size() / 2);
  (void)PrepareImage(MustEncode(NoisePixels(8, 8, 3), ".png"));  // libvips start-up output, if any
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  EXPECT_THAT(PrepareImage(cut), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(PrepareImage(cut, {.verify_pixels = false}), IsOk());
  const std::string out = ::testing::internal::GetCapturedStdout();
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(out, "");
  EXPECT_EQ(err, "");
}

TEST(PrepareImageTest, WorksFromManyThreads) {
  std::vector<std::string> inputs;
  for (int i = 0; i < 8; ++i) {
    inputs.push_back(
        MustEncode(NoisePixels(120 + i, 80, 3, i), i % 2 ? ".jpg" : ".png", i % 4 == 1 ? 6 : 0));
  }
  std::vector<absl::StatusOr<PreparedImage>> results(inputs.size(), absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < inputs.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = PrepareImage(inputs[i], {.max_dimension = 100}); });
  }
  for (std::thread& t : threads) t.join();
  for (size_t i = 0; i < inputs.size(); ++i) {
    ASSERT_THAT(results[i], IsOk()) << i;
    const bool rotated = i % 4 == 1;
    EXPECT_EQ(results[i]->width, rotated ? 80 : 120 + static_cast<int>(i)) << i;
    EXPECT_EQ(std::max(results[i]->sent_width, results[i]->sent_height), 100) << i;
  }
}

}  // namespace
}  // namespace vision_gateway::image
