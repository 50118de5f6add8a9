#include "service/vision/spatial_item.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::vision {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::vision_gateway::testing::IsOk;
using ::vision_gateway::testing::StatusIs;

using MaskKind = SpatialItem::MaskKind;

// base64 of the PNG signature followed by 0x00 0xff 0x10: exercises '/' and one '=' of padding.
constexpr char kPngB64[] = "iVBORw0KGgoA/xA=";
const std::string kPngBytes("\x89PNG\r\n\x1a\n\x00\xff\x10", 11);

auto IsMalformedBox() {
  return StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("malformed box_2d"));
}
auto IsDegenerateMask() {
  return StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("degenerate mask"));
}

TEST(ParseSpatialItemTest, BoxAndLabel) {
  auto item = ParseSpatialItem(R"({"box_2d": [100, 200, 300, 400], "label": "cat"})", false);
  ASSERT_THAT(item, IsOk());
  EXPECT_EQ(item->label, "cat");
  EXPECT_THAT(item->box_2d, ElementsAre(100, 200, 300, 400));  // order kept: ymin, xmin, ...
  EXPECT_EQ(item->mask_kind, MaskKind::kNone);
  EXPECT_THAT(item->mask_png, IsEmpty());
  EXPECT_THAT(item->polygon, IsEmpty());
}

TEST(ParseSpatialItemTest, AnyKeyOrderAndExtraKeys) {
  const std::string mask = std::string("\"data:image/png;base64,") + kPngB64 + "\"";
  const std::vector<std::string> inputs = {
      R"({"label": "cat", "box_2d": [1, 2, 3, 4], "mask": )" + mask + "}",
      R"({"mask": )" + mask + R"(, "box_2d": [1, 2, 3, 4], "label": "cat"})",
      std::string(R"({"confidence": 0.9, "box_2d": [1, 2, 3, 4], "extra": {"box_2d": "no",)") +
          R"( "l": [1]}, "mask": )" + mask + R"(, "label": "cat", "point": [5, 6]})",
  };
  for (const std::string& input : inputs) {
    auto item = ParseSpatialItem(input, true);
    ASSERT_THAT(item, IsOk()) << input;
    EXPECT_EQ(item->label, "cat");
    EXPECT_THAT(item->box_2d, ElementsAre(1, 2, 3, 4));
    EXPECT_EQ(item->mask_kind, MaskKind::kPng);
    EXPECT_EQ(item->mask_png, kPngBytes);
  }
}

TEST(ParseSpatialItemTest, FloatsAndExponentsAccepted) {
  auto item = ParseSpatialItem(R"({"box_2d": [100.5, 200.25, -3, 4e2], "label": "x"})", false);
  ASSERT_THAT(item, IsOk());
  EXPECT_THAT(item->box_2d, ElementsAre(100.5, 200.25, -3, 400));
}

TEST(ParseSpatialItemTest, LargeIntegersAccepted) {
  auto item =
      ParseSpatialItem(R"({"box_2d": [18446744073709551615, 0, 1, 2], "label": "x"})", false);
  ASSERT_THAT(item, IsOk());
  EXPECT_DOUBLE_EQ(item->box_2d[0], 18446744073709551615.0);
}

TEST(ParseSpatialItemTest, WrongArity) {
  EXPECT_THAT(ParseSpatialItem(R"({"box_2d": [1, 2, 3], "label": "x"})", false), IsMalformedBox());
  EXPECT_THAT(ParseSpatialItem(R"({"box_2d": [1, 2, 3, 4, 5], "label": "x"})", false),
              IsMalformedBox());
  EXPECT_THAT(ParseSpatialItem(R"({"box_2d": [], "label": "x"})", false), IsMalformedBox());
}

TEST(ParseSpatialItemTest, NonNumbersInBoxRejected) {
  for (const char* input : {
           R"({"box_2d": ["100", "200", "300", "400"]})",
           R"({"box_2d": [100, 200, 300, "400"]})",
           R"({"box_2d": [100, null, 300, 400]})",
           R"({"box_2d": [100, true, 300, 400]})",
           R"({"box_2d": [[100], 200, 300, 400]})",
           R"({"box_2d": [100, {}, 300, 400]})",
       }) {
    EXPECT_THAT(ParseSpatialItem(input, false), IsMalformedBox()) << input;
  }
}

TEST(ParseSpatialItemTest, MissingOrNonArrayBoxRejected) {
  for (const char* input : {
           R"({"label": "x"})",
           R"({"box_2d": null, "label": "x"})",
           R"({"box_2d": "100, 200, 300, 400"})",
           R"({"box_2d": {"ymin": 1, "xmin": 2, "ymax": 3, "xmax": 4}})",
           R"({"box2d": [1, 2, 3, 4]})",
           R"({"box_2d": [[1, 2, 3, 4]]})",
       }) {
    EXPECT_THAT(ParseSpatialItem(input, false), IsMalformedBox()) << input;
  }
}

TEST(ParseSpatialItemTest, LabelDefaultsAndValidation) {
  for (const char* input :
       {R"({"box_2d": [1, 2, 3, 4]})", R"({"box_2d": [1, 2, 3, 4], "label": null})",
        R"({"box_2d": [1, 2, 3, 4], "label": ""})"}) {
    auto item = ParseSpatialItem(input, false);
    ASSERT_THAT(item, IsOk()) << input;
    EXPECT_EQ(item->label, "object") << input;
  }
  EXPECT_THAT(ParseSpatialItem(R"({"box_2d": [1, 2, 3, 4], "label": 7})", false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("malformed label")));
  EXPECT_THAT(ParseSpatialItem(R"({"box_2d": [1, 2, 3, 4], "label": ["a"]})", false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("malformed label")));
}

TEST(ParseSpatialItemTest, LabelEscapesAndUtf8) {
  auto escaped = ParseSpatialItem(
      R"({"box_2d": [1, 2, 3, 4], "label": "caf\u00e9 \"q\" \\ ] } \u65e5\u672c"})", false);
  ASSERT_THAT(escaped, IsOk());
  EXPECT_EQ(escaped->label, "caf\xc3\xa9 \"q\" \\ ] } \xe6\x97\xa5\xe6\x9c\xac");
  auto raw = ParseSpatialItem(
      "{\"box_2d\": [1, 2, 3, 4], \"label\": \"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\"}", false);
  ASSERT_THAT(raw, IsOk());
  EXPECT_EQ(raw->label, "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac");
}

TEST(ParseSpatialItemTest, InvalidUtf8Rejected) {
  EXPECT_THAT(ParseSpatialItem("{\"box_2d\": [1, 2, 3, 4], \"label\": \"a\xff\"}", false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("malformed item")));
}

TEST(ParseSpatialItemTest, NotAnObjectOrNotJson) {
  for (const char* input :
       {"1", "\"cat\"", "[1, 2, 3, 4]", "null", "", "}", R"({"box_2d": [1, 2, 3, 4])",
        R"({"box_2d": [1, 2, 3, 4]]})", R"({"box_2d": [1, 2, 3, 4]} trailing)"}) {
    EXPECT_THAT(ParseSpatialItem(input, false),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("malformed item")))
        << input;
  }
}

TEST(ParseSpatialItemTest, DeepNestingRejectedNotCrashed) {
  std::string deep = R"({"box_2d": [1, 2, 3, 4], "x": )";
  for (int i = 0; i < 100000; ++i) deep += '[';
  for (int i = 0; i < 100000; ++i) deep += ']';
  deep += '}';
  EXPECT_THAT(ParseSpatialItem(deep, false), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ParseSpatialItemTest, MaskIgnoredWhenNotWanted) {
  auto item = ParseSpatialItem(
      R"({"box_2d": [1, 2, 3, 4], "label": "x", "mask": "<start_of_mask><seg_35>"})", false);
  ASSERT_THAT(item, IsOk());
  EXPECT_EQ(item->mask_kind, MaskKind::kNone);
  EXPECT_THAT(item->mask_png, IsEmpty());
}

TEST(ParseSpatialItemTest, PngMaskDataUrlAndBareBase64) {
  for (const std::string& mask :
       {std::string("data:image/png;base64,") + kPngB64, std::string(kPngB64)}) {
    auto item = ParseSpatialItem(R"({"box_2d": [1, 2, 3, 4], "mask": ")" + mask + R"("})", true);
    ASSERT_THAT(item, IsOk()) << mask;
    EXPECT_EQ(item->mask_kind, MaskKind::kPng);
    EXPECT_EQ(item->mask_png, kPngBytes);
    EXPECT_THAT(item->polygon, IsEmpty());
  }
}

TEST(ParseSpatialItemTest, Base64PaddingVariants) {
  const std::string sig("\x89PNG\r\n\x1a\n", 8);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"iVBORw0KGgo=", sig},
      {"iVBORw0KGgo", sig},  // padding omitted
      {"iVBORw0KGgoA/w==", sig + std::string("\x00\xff", 2)},
      {"iVBORw0KGgoA/w", sig + std::string("\x00\xff", 2)},
      {"iVBORw0KGgoA/xAg", sig + std::string("\x00\xff\x10 ", 4)},
  };
  for (const auto& [b64, bytes] : cases) {
    auto item = ParseSpatialItem(R"({"box_2d": [1, 2, 3, 4], "mask": ")" + b64 + R"("})", true);
    ASSERT_THAT(item, IsOk()) << b64;
    EXPECT_EQ(item->mask_png, bytes) << b64;
  }
}

TEST(ParseSpatialItemTest, DegenerateStringMasks) {
  for (const char* mask : {
           "<start_of_mask><seg_35><seg_102><seg_7>",
           "data:image/png;base64,<start_of_mask><seg_35>",
           "iVBORw0KGgo!!!",                  // invalid characters
           "iVBORw0K Ggo=",                   // embedded space
           "iVBORw0KGgoA_xA=",                // URL-safe alphabet
           "iVBORw0KGgoAA",                   // length 13: 4n+1 is never valid
           "iVBORw0K=Ggo",                    // padding in the middle
           "iVBORw0KGgo===",                  // too much padding
           "iVBORw0KGgoA/w=",                 // padded to a length that is not a multiple of 4
           "",                                // empty
           "data:image/png;base64,",          // empty payload
           "data:image/png,iVBORw0KGgo=",     // not base64-encoded
           "data:image/png;base64",           // no comma
           "aGVsbG8gd29ybGQ=",                // valid base64 of "hello world": not a PNG
           "data:image/png;base64,aVZCT1J3",  // valid base64, not a PNG
       }) {
    EXPECT_THAT(ParseSpatialItem(
                    R"({"box_2d": [1, 2, 3, 4], "mask": ")" + std::string(mask) + R"("})", true),
                IsDegenerateMask())
        << mask;
  }
}

TEST(ParseSpatialItemTest, MissingNullOrWrongTypeMaskIsDegenerate) {
  for (const char* input : {
           R"({"box_2d": [1, 2, 3, 4], "label": "x"})",
           R"({"box_2d": [1, 2, 3, 4], "mask": null})",
           R"({"box_2d": [1, 2, 3, 4], "mask": 5})",
           R"({"box_2d": [1, 2, 3, 4], "mask": {"png": "iVBORw0KGgo="}})",
           R"({"box_2d": [1, 2, 3, 4], "mask": true})",
       }) {
    EXPECT_THAT(ParseSpatialItem(input, true), IsDegenerateMask()) << input;
  }
}

TEST(ParseSpatialItemTest, BoxErrorTakesPrecedenceOverMaskError) {
  EXPECT_THAT(ParseSpatialItem(R"({"box_2d": [1, 2, 3], "mask": "<seg_1>"})", true),
              IsMalformedBox());
}

TEST(ParseSpatialItemTest, PolygonMask) {
  auto item = ParseSpatialItem(
      R"({"box_2d": [1, 2, 3, 4], "label": "p", "mask": [[100, 200], [300.5, 400], [5e2, 0]]})",
      true);
  ASSERT_THAT(item, IsOk());
  EXPECT_EQ(item->mask_kind, MaskKind::kPolygon);
  // x first, exactly as given.
  EXPECT_THAT(item->polygon, ElementsAre(Pair(100, 200), Pair(300.5, 400), Pair(500, 0)));
  EXPECT_THAT(item->mask_png, IsEmpty());
}

TEST(ParseSpatialItemTest, NestedPolygonsTakeTheFirst) {
  const char* inputs[] = {
      R"({"box_2d": [1, 2, 3, 4], "mask": [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 10]]]})",
      R"({"box_2d": [1, 2, 3, 4], "mask": [[[[1, 2], [3, 4], [5, 6]]], [[[7, 8]]]]})",
  };
  for (const char* input : inputs) {
    auto item = ParseSpatialItem(input, true);
    ASSERT_THAT(item, IsOk()) << input;
    EXPECT_EQ(item->mask_kind, MaskKind::kPolygon);
    EXPECT_THAT(item->polygon, ElementsAre(Pair(1, 2), Pair(3, 4), Pair(5, 6))) << input;
  }
}

TEST(ParseSpatialItemTest, DegeneratePolygons) {
  for (const char* mask : {
           "[]",
           "[[1, 2], [3, 4]]",              // fewer than 3 points
           "[[1, 2], [3, 4], [5, 6, 7]]",   // a point with 3 values
           "[[1, 2], [3, 4], [5]]",         // a point with 1 value
           "[[1, 2], [3, 4], [\"5\", 6]]",  // a numeric string
           "[[1, 2], [3, 4], [null, 6]]",
           "[[1, 2], [3, 4], 5]",                            // not a pair
           "[1, 2, 3, 4, 5, 6]",                             // flat list
           "[[[1, 2], [3, 4]], [[5, 6], [7, 8], [9, 10]]]",  // first polygon too short
           "[[]]",
       }) {
    EXPECT_THAT(
        ParseSpatialItem(R"({"box_2d": [1, 2, 3, 4], "mask": )" + std::string(mask) + "}", true),
        IsDegenerateMask())
        << mask;
  }
}

TEST(ParseSpatialItemTest, MasksOverTheLimitsAreDegenerate) {
  const SpatialItemLimits limits{.max_polygon_points = 4, .max_mask_png_pixels = 100};
  EXPECT_THAT(ParseSpatialItem(
                  R"({"box_2d":[1,2,3,4],"mask":[[1,1],[2,1],[2,2],[1,2],[1,1.5]]})", true, limits),
              IsDegenerateMask());
  EXPECT_THAT(ParseSpatialItem(R"({"box_2d":[1,2,3,4],"mask":[[1,1],[2,1],[2,2],[1,2]]})", true,
                               limits),
              IsOk());
  // An IHDR of 11x10 = 110 pixels: refused before decoding.
  const std::string png = std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x0b\0\0\0\x0a", 24);
  const std::string item =
      R"({"box_2d":[1,2,3,4],"mask":"data:image/png;base64,)" + absl::Base64Escape(png) + "\"}";
  EXPECT_THAT(ParseSpatialItem(item, true, limits), IsDegenerateMask());
  EXPECT_THAT(ParseSpatialItem(item, true, SpatialItemLimits{}), IsOk());
}

// The mask's base64 is decoded four characters at a time: every length of payload (each tail of
// 0, 1 or 2 bytes), padded or not, gives the bytes back; a character outside the alphabet
// anywhere, or a length no base64 has, is refused.
TEST(ParseSpatialItemTest, DecodesBase64OfEveryLength) {
  std::string bytes = kPngBytes;
  for (int length = 0; length < 40; ++length) {
    bytes.push_back(static_cast<char>(length * 37 + 11));
    const std::string padded = absl::Base64Escape(bytes);
    std::string unpadded = padded;
    while (!unpadded.empty() && unpadded.back() == '=') unpadded.pop_back();
    for (const std::string& b64 : {padded, unpadded}) {
      absl::StatusOr<SpatialItem> item = ParseSpatialItem(
          R"({"box_2d":[1,2,3,4],"mask":")" + b64 + "\"}", true, SpatialItemLimits{});
      ASSERT_THAT(item, IsOk()) << b64;
      EXPECT_EQ(item->mask_png, bytes) << b64;
    }
    for (size_t at : {size_t{0}, unpadded.size() / 2, unpadded.size() - 1}) {
      for (char bad : {'-', '_', '.', '*'}) {
        std::string broken = unpadded;
        broken[at] = bad;
        EXPECT_THAT(ParseSpatialItem(R"({"box_2d":[1,2,3,4],"mask":")" + broken + "\"}", true,
                                     SpatialItemLimits{}),
                    IsDegenerateMask())
            << broken;
      }
    }
    if (unpadded.size() % 4 == 0) {  // one character more: a length no base64 has
      EXPECT_THAT(ParseSpatialItem(R"({"box_2d":[1,2,3,4],"mask":")" + unpadded + "A\"}", true,
                                   SpatialItemLimits{}),
                  IsDegenerateMask());
    }
  }
}

// Found by the spatial_item fuzzer (UBSan: signed overflow in the pixel count): an IHDR declaring
// dimensions beyond PNG's 2^31 - 1 is over any limit, and counting its pixels must not overflow.
TEST(ParseSpatialItemTest, PngHeaderWithHugeDimensionsIsOverTheLimit) {
  for (const std::string& dims : {std::string("\xe5\xab\x7d\xe6\xef\xbf\xe3\x8c", 8),
                                  std::string("\xff\xff\xff\xff\xff\xff\xff\xff", 8),
                                  std::string("\x80\0\0\0\0\0\0\x01", 8)}) {
    const std::string png = std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16) + dims;
    const std::string item =
        R"({"box_2d":[1,2,3,4],"mask":"data:image/png;base64,)" + absl::Base64Escape(png) + "\"}";
    EXPECT_THAT(ParseSpatialItem(item, true, SpatialItemLimits{}), IsDegenerateMask());
  }
}

}  // namespace
}  // namespace vision_gateway::vision
