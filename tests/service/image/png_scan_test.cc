#include "service/image/png_scan.h"

#include <cstdint>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/service/image/png_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_images.h"

namespace vision_gateway::image::internal {
namespace {

using ::testing::HasSubstr;
using ::vision_gateway::testing::Deflate;
using ::vision_gateway::testing::Encode;
using ::vision_gateway::testing::FilterScanlines;
using ::vision_gateway::testing::HandMadePng;
using ::vision_gateway::testing::ImageData;
using ::vision_gateway::testing::IsOk;
using ::vision_gateway::testing::JoinPng;
using ::vision_gateway::testing::NoisePixels;
using ::vision_gateway::testing::PngChunk;
using ::vision_gateway::testing::SplitPng;
using ::vision_gateway::testing::StatusIs;
using ::vision_gateway::testing::WithImageData;

// Buffer sizes: the whole image data (libdeflate, in one call), and pieces (zlib) as small as one
// byte, so that every check is made on both paths.
std::vector<size_t> BufferSizes(const PngHeader& header) {
  return {static_cast<size_t>(header.ImageDataBytes()), 4096, 97, 1};
}

// The header's and the data's verdict on every path: OK, or the first error.
absl::Status Scan(const std::string& png, size_t buffer_size) {
  absl::StatusOr<PngHeader> header = ReadPngHeader(png);
  if (!header.ok()) return header.status();
  std::vector<uint8_t> buffer(buffer_size);
  return ScanPngImageData(png, *header, buffer.data(), buffer.size());
}

void ExpectRefusedEveryWay(const std::string& png, const std::string& why,
                           const std::string& detail) {
  for (size_t size : {size_t{1} << 22, size_t{4096}, size_t{97}, size_t{1}}) {
    EXPECT_THAT(Scan(png, size), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(detail)))
        << why << ", buffer of " << size << " bytes";
  }
}

std::string NoisePng(int width, int height, int bands, const char* suffix = ".png") {
  return Encode(NoisePixels(width, height, bands), suffix).value_or("");
}

TEST(PngScanTest, AcceptsWhatLibvipsWritesOnEveryPath) {
  const std::vector<std::pair<std::string, std::string>> pngs = {
      {"RGB", NoisePng(61, 37, 3)},
      {"grey", NoisePng(61, 37, 1)},
      {"RGBA", NoisePng(61, 37, 4)},
      {"grey+alpha", NoisePng(5, 3, 2)},
      {"interlaced RGB", NoisePng(61, 37, 3, ".png[interlace]")},
      {"interlaced 1x1", NoisePng(1, 1, 3, ".png[interlace]")},
      {"interlaced 3x2", NoisePng(3, 2, 1, ".png[interlace]")},
      {"1-bit", NoisePng(13, 7, 1, ".png[bitdepth=1]")},
      {"16-bit grey", testing::EncodeGrey16Png(7, 5, std::vector<uint16_t>(35, 40000))},
  };
  for (const auto& [what, png] : pngs) {
    ASSERT_FALSE(png.empty()) << what;
    absl::StatusOr<PngHeader> header = ReadPngHeader(png);
    ASSERT_THAT(header, IsOk()) << what;
    for (size_t size : BufferSizes(*header)) {
      EXPECT_THAT(Scan(png, size), IsOk()) << what << ", buffer of " << size << " bytes";
    }
  }
}

TEST(PngScanTest, ReadsTheHeader) {
  absl::StatusOr<PngHeader> header = ReadPngHeader(NoisePng(61, 37, 3, ".png[interlace]"));
  ASSERT_THAT(header, IsOk());
  EXPECT_EQ(header->width, 61u);
  EXPECT_EQ(header->height, 37u);
  EXPECT_EQ(header->bit_depth, 8);
  EXPECT_EQ(header->colour_type, 2);
  EXPECT_TRUE(header->interlaced);
  EXPECT_FALSE(header->has_exif);
  // Adam7 pass sizes of a 61x37 image, each scanline with its filter byte.
  uint64_t expected = 0;
  for (auto [w, h] : {std::pair{8, 5}, std::pair{8, 5}, std::pair{16, 5}, std::pair{15, 10},
                      std::pair{31, 9}, std::pair{30, 19}, std::pair{61, 18}}) {
    expected += static_cast<uint64_t>(h) * (1 + 3 * w);
  }
  EXPECT_EQ(header->ImageDataBytes(), expected);
}

// Cut anywhere, in the header, in the image data or in IEND: refused on every path.
TEST(PngScanTest, RefusesAPngCutAnywhere) {
  for (const char* suffix : {".png", ".png[interlace]"}) {
    const std::string png = NoisePng(40, 30, 3, suffix);
    std::vector<size_t> cuts = {0, 8, 20, 33, png.size() - 1, png.size() - 4, png.size() - 12,
                                png.size() - 13, png.size() - 16};
    for (int i = 1; i < 32; ++i) cuts.push_back(png.size() * i / 32);
    for (size_t cut : cuts) {
      ExpectRefusedEveryWay(png.substr(0, cut),
                            std::string(suffix) + " cut to " + std::to_string(cut) + " of " +
                                std::to_string(png.size()),
                            "");
    }
  }
}

// A byte of the zlib stream changed, and the IDAT's CRC made to match: zlib's own checks (the
// deflate data, the adler32 of what it inflates to, its length) must refuse it.
TEST(PngScanTest, RefusesCorruptImageDataBehindARightCrc) {
  const std::string png = NoisePng(40, 30, 3);
  const std::vector<PngChunk> chunks = SplitPng(png);
  const std::string data = ImageData(chunks);
  for (size_t at = 0; at < data.size(); at += data.size() / 40 + 1) {
    std::string bad = data;
    bad[at] = static_cast<char>(bad[at] ^ 0x10);
    ExpectRefusedEveryWay(JoinPng(WithImageData(chunks, bad)),
                          "byte " + std::to_string(at) + " of " + std::to_string(data.size()), "");
  }
}

TEST(PngScanTest, RefusesABadCrcInACriticalChunk) {
  for (const char* type : {"IHDR", "IDAT", "IEND"}) {
    std::vector<PngChunk> chunks = SplitPng(NoisePng(20, 10, 3));
    for (PngChunk& c : chunks) c.bad_crc = c.type == type;
    ExpectRefusedEveryWay(JoinPng(chunks), type, std::string("CRC error in ") + type);
  }
}

// libpng's default for an ancillary chunk with a bad CRC: a warning, the chunk dropped.
TEST(PngScanTest, IgnoresABadCrcInAnAncillaryChunk) {
  std::vector<PngChunk> chunks = SplitPng(NoisePng(20, 10, 3));
  chunks.insert(chunks.begin() + 1, PngChunk{"tEXt", std::string("Comment\0hi", 10), true});
  chunks.insert(chunks.end() - 1, PngChunk{"tEXt", std::string("Comment\0hi", 10), true});
  for (size_t size : {size_t{1} << 22, size_t{1}}) EXPECT_THAT(Scan(JoinPng(chunks), size), IsOk());
}

// Stricter than libpng, which only warns: a zlib stream whose adler32 is wrong (every CRC right).
TEST(PngScanTest, RefusesAWrongAdler32) {
  const std::vector<uint8_t> pixels(16 * 8 * 3, 77);
  std::string zlib = Deflate(FilterScanlines(pixels, 16, 8, 3, [](int) { return 0; }));
  ASSERT_THAT(Scan(HandMadePng(16, 8, 2, zlib), 1 << 22), IsOk());
  zlib.back() = static_cast<char>(zlib.back() ^ 1);
  ExpectRefusedEveryWay(HandMadePng(16, 8, 2, zlib), "adler32 off by one bit", "");
}

TEST(PngScanTest, RefusesABadFilterType) {
  const std::vector<uint8_t> pixels(16 * 8 * 3, 77);
  for (int bad_row : {0, 3, 7}) {
    const std::string zlib = Deflate(
        FilterScanlines(pixels, 16, 8, 3, [&](int y) { return y == bad_row ? 5 : y % 5; }));
    ExpectRefusedEveryWay(HandMadePng(16, 8, 2, zlib), "filter 5 on row " + std::to_string(bad_row),
                          "bad filter type");
  }
}

// The zlib stream must inflate to exactly the scanlines the header declares.
TEST(PngScanTest, RefusesTooMuchOrTooLittleImageData) {
  const std::vector<uint8_t> pixels(16 * 9 * 3, 77);
  const auto none = [](int) { return 0; };
  const std::string nine_rows = Deflate(FilterScanlines(pixels, 16, 9, 3, none));
  ExpectRefusedEveryWay(HandMadePng(16, 8, 2, nine_rows), "a row too many", "too much image data");
  const std::string seven_rows = Deflate(
      FilterScanlines(std::vector<uint8_t>(pixels.begin(), pixels.begin() + 16 * 7 * 3), 16, 7, 3,
                      none));
  ExpectRefusedEveryWay(HandMadePng(16, 8, 2, seven_rows), "a row too few",
                        "not enough image data");
}

TEST(PngScanTest, ChecksTheChunksAroundTheImageData) {
  const std::vector<PngChunk> chunks = SplitPng(NoisePng(40, 30, 3));
  const std::string data = ImageData(chunks);
  // The stream split over many IDATs (one byte each at the end), then an empty IDAT: fine.
  std::vector<PngChunk> split = WithImageData(chunks, data, 7);
  split.insert(split.end() - 1, PngChunk{"IDAT", ""});
  for (size_t size : {size_t{1} << 22, size_t{1}}) EXPECT_THAT(Scan(JoinPng(split), size), IsOk());
  // Bytes after IEND are not read (as by libpng).
  for (size_t size : {size_t{1} << 22, size_t{1}}) {
    EXPECT_THAT(Scan(JoinPng(chunks) + "trailing", size), IsOk());
  }

  // Image data in two runs of IDATs: refused.
  std::vector<PngChunk> two_runs = WithImageData(chunks, data, data.size() / 2 + 1);
  ASSERT_EQ(two_runs[two_runs.size() - 2].type, "IDAT");
  two_runs.insert(two_runs.end() - 2, PngChunk{"tEXt", std::string("Comment\0hi", 10)});
  ExpectRefusedEveryWay(JoinPng(two_runs), "IDAT after tEXt", "extra image data");
  // An unknown critical chunk (upper-case first letter), before or after the image data.
  for (size_t where : {size_t{1}, chunks.size() - 1}) {
    std::vector<PngChunk> odd = chunks;
    odd.insert(odd.begin() + static_cast<ptrdiff_t>(where), PngChunk{"ABCD", "x"});
    ExpectRefusedEveryWay(JoinPng(odd), "ABCD at " + std::to_string(where), "critical chunk");
  }
  // No IEND; no IDAT; a palette image without PLTE.
  std::vector<PngChunk> no_iend(chunks.begin(), chunks.end() - 1);
  ExpectRefusedEveryWay(JoinPng(no_iend), "no IEND", "PNG ends early");
  std::vector<PngChunk> no_idat = {chunks.front(), chunks.back()};
  ExpectRefusedEveryWay(JoinPng(no_idat), "no IDAT", "no image data");
  std::vector<PngChunk> palette = chunks;
  palette.front().data[9] = 3;  // colour type 3, 8 bits: one byte per pixel
  ExpectRefusedEveryWay(JoinPng(palette), "no PLTE", "missing PLTE");
}

// Every filter type on every kind of row (first row, where "up" is 0; later rows), grey and RGB:
// unfiltered, the scanlines are the pixels again.
TEST(PngScanTest, UnfiltersEveryFilterType) {
  for (int channels : {1, 3, 4}) {
    const int width = 23, height = 11;
    const std::vector<uint8_t> pixels = NoisePixels(width, height, channels).data;
    for (int first_filter = 0; first_filter < 5; ++first_filter) {
      const std::string scanlines = FilterScanlines(
          pixels, width, height, channels, [&](int y) { return (first_filter + y) % 5; });
      const std::string png =
          HandMadePng(width, height, channels == 1 ? 0 : channels == 3 ? 2 : 6, Deflate(scanlines));
      absl::StatusOr<PngHeader> header = ReadPngHeader(png);
      ASSERT_THAT(header, IsOk());
      std::vector<uint8_t> raw(header->ImageDataBytes());
      ASSERT_THAT(ScanPngImageData(png, *header, raw.data(), raw.size()), IsOk());
      const size_t row_size = 1 + static_cast<size_t>(width) * channels;
      int wrong = 0;
      for (int y = 0; y < height; ++y) {
        uint8_t* row = &raw[y * row_size];
        UnfilterRow(row[0], row + 1, y > 0 ? row + 1 - row_size : nullptr, row_size - 1,
                    channels);
        for (size_t i = 0; i + 1 < row_size; ++i) {
          wrong += row[1 + i] != pixels[y * (row_size - 1) + i];
        }
      }
      EXPECT_EQ(wrong, 0) << channels << " channels, first filter " << first_filter;
    }
  }
}

}  // namespace
}  // namespace vision_gateway::image::internal
