#include "service/vision/geometry.h"

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <ostream>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vision_gateway::vision {

// Printers for failure messages. Outside the unnamed namespace so that argument-dependent lookup
// finds them; static so that they cannot clash with other test files.
[[maybe_unused]] static std::ostream& operator<<(std::ostream& os, const NormBox& b) {
  return os << "NormBox{y " << b.y_min << ", x " << b.x_min << ", y " << b.y_max << ", x "
            << b.x_max << "}";
}
[[maybe_unused]] static std::ostream& operator<<(std::ostream& os, const PixelBox& b) {
  return os << "PixelBox{x " << b.x_min << ", y " << b.y_min << ", x " << b.x_max << ", y "
            << b.y_max << "}";
}
[[maybe_unused]] static std::ostream& operator<<(std::ostream& os, const PixelPoint& p) {
  return os << "PixelPoint{" << p.x << ", " << p.y << "}";
}

namespace {

using ::testing::ElementsAre;
using ::testing::Optional;

TEST(NormalizeBoxTest, PassesThroughOrderedBox) {
  EXPECT_THAT(NormalizeBox({100, 200, 300, 400}), Optional(NormBox{100, 200, 300, 400}));
  EXPECT_THAT(NormalizeBox({0, 0, 1000, 1000}), Optional(NormBox{0, 0, 1000, 1000}));
}

TEST(NormalizeBoxTest, ReordersSwappedMinMax) {
  EXPECT_THAT(NormalizeBox({300, 400, 100, 200}), Optional(NormBox{100, 200, 300, 400}));
  EXPECT_THAT(NormalizeBox({300, 200, 100, 400}), Optional(NormBox{100, 200, 300, 400}));
  EXPECT_THAT(NormalizeBox({100, 400, 300, 200}), Optional(NormBox{100, 200, 300, 400}));
}

TEST(NormalizeBoxTest, ClampsOutOfRange) {
  EXPECT_THAT(NormalizeBox({-5, -5, 1200, 1200}), Optional(NormBox{0, 0, 1000, 1000}));
  EXPECT_THAT(NormalizeBox({1200, 10, -5, 20}), Optional(NormBox{0, 10, 1000, 20}));
  EXPECT_THAT(NormalizeBox({-5, 990, 10, 1e9}), Optional(NormBox{0, 990, 10, 1000}));
}

TEST(NormalizeBoxTest, ZeroAreaIsDropped) {
  EXPECT_EQ(NormalizeBox({100, 200, 100, 400}), std::nullopt);
  EXPECT_EQ(NormalizeBox({100, 200, 300, 200}), std::nullopt);
  EXPECT_EQ(NormalizeBox({-5, 10, -1, 20}), std::nullopt);      // both y clamp to 0
  EXPECT_EQ(NormalizeBox({10, 1001, 20, 1200}), std::nullopt);  // both x clamp to 1000
  EXPECT_EQ(NormalizeBox({0, 0, 0, 0}), std::nullopt);
}

TEST(NormalizeBoxTest, RoundsHalfAwayFromZero) {
  EXPECT_THAT(NormalizeBox({99.5, 0.4, 300.5, 400.49}), Optional(NormBox{100, 0, 301, 400}));
  EXPECT_THAT(NormalizeBox({0.5, 1.5, 2.5, 3.5}), Optional(NormBox{1, 2, 3, 4}));
  EXPECT_THAT(NormalizeBox({-0.5, 998.5, 999.5, 999.6}), Optional(NormBox{0, 999, 1000, 1000}));
}

TEST(NormalizeBoxTest, RoundingToZeroAreaIsDropped) {
  EXPECT_EQ(NormalizeBox({100.2, 0, 100.4, 10}), std::nullopt);
  EXPECT_THAT(NormalizeBox({100.4, 0, 100.5, 10}), Optional(NormBox{100, 0, 101, 10}));
}

TEST(NormalizeBoxTest, NonFiniteIsDropped) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(NormalizeBox({nan, 0, 100, 100}), std::nullopt);
  EXPECT_EQ(NormalizeBox({0, 0, inf, 100}), std::nullopt);
  EXPECT_EQ(NormalizeBox({0, -inf, 100, 100}), std::nullopt);
}

TEST(ToPixelBoxTest, ScalesXByWidthAndYByHeight) {
  EXPECT_EQ(ToPixelBox(NormBox{100, 200, 300, 400}, 4000, 3000), (PixelBox{800, 300, 1600, 900}));
  EXPECT_EQ(ToPixelBox(NormBox{0, 0, 1000, 1000}, 4000, 3000), (PixelBox{0, 0, 4000, 3000}));
}

TEST(ToPixelBoxTest, ExactWhereFloatingPointIsNot) {
  // 9 / 1000.0 * 3000 == 26.999999999999996 in doubles; the exact answer is 27.
  EXPECT_EQ(ToPixelBox(NormBox{9, 9, 1000, 1000}, 3000, 3000), (PixelBox{27, 27, 3000, 3000}));
}

TEST(ToPixelBoxTest, OddSizesFloor) {
  // 641 x 479: 500 → 320.5 / 239.5; 999 → 640.359 / 478.521; 1 → 0.641 / 0.479.
  EXPECT_EQ(ToPixelBox(NormBox{500, 500, 999, 999}, 641, 479), (PixelBox{320, 239, 640, 478}));
  EXPECT_EQ(ToPixelBox(NormBox{1, 1, 1000, 1000}, 641, 479), (PixelBox{0, 0, 641, 479}));
}

TEST(ToPixelBoxTest, EveryValueIsTheExactFloor) {
  // Defining property of floor: p * 1000 <= v * size < (p + 1) * 1000, for every v and a range
  // of sizes including the odd ones.
  for (int size : {1, 7, 479, 641, 999, 1000, 1001, 1080, 1920, 3000, 4000, 4032, 65535}) {
    for (int v = 0; v <= 1000; ++v) {
      const PixelBox b = ToPixelBox(NormBox{v, v, v, v}, size, size);
      const int64_t scaled = int64_t{v} * size;
      ASSERT_LE(int64_t{b.x_min} * 1000, scaled) << v << " " << size;
      ASSERT_LT(scaled, (int64_t{b.x_min} + 1) * 1000) << v << " " << size;
      ASSERT_EQ(b.x_min, b.x_max);
      ASSERT_EQ(b.y_min, b.x_min);
      ASSERT_GE(b.x_min, 0);
      ASSERT_LE(b.x_min, size);
    }
  }
}

TEST(ToPixelBoxTest, ThousandMapsToSizeEvenForHugeImages) {
  const int big = std::numeric_limits<int>::max();
  EXPECT_EQ(ToPixelBox(NormBox{0, 0, 1000, 1000}, big, big), (PixelBox{0, 0, big, big}));
  EXPECT_EQ(ToPixelBox(NormBox{0, 0, 1000, 1000}, 1, 1), (PixelBox{0, 0, 1, 1}));
}

TEST(ToPixelBoxTest, ClampsOutOfRangeInputsAndSizes) {
  EXPECT_EQ(ToPixelBox(NormBox{-10, -10, 2000, 2000}, 641, 479), (PixelBox{0, 0, 641, 479}));
  EXPECT_EQ(ToPixelBox(NormBox{100, 100, 500, 500}, -5, 0), (PixelBox{0, 0, 0, 0}));
}

TEST(PolygonToPixelTest, XFirstScaledByWidth) {
  EXPECT_EQ(PolygonPointToPixel({500, 250}, 641, 479), (PixelPoint{320.5, 119.75}));
  EXPECT_EQ(PolygonPointToPixel({1000, 0}, 4000, 3000), (PixelPoint{4000, 0}));
  EXPECT_EQ(PolygonPointToPixel({0, 1000}, 4000, 3000), (PixelPoint{0, 3000}));
}

TEST(PolygonToPixelTest, ClampsAndRejectsNaN) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(PolygonPointToPixel({-20, 1500}, 640, 480), (PixelPoint{0, 480}));
  EXPECT_EQ(PolygonPointToPixel({nan, nan}, 640, 480), (PixelPoint{0, 0}));
}

TEST(PolygonToPixelTest, WholePolygonKeepsOrder) {
  const std::vector<std::pair<double, double>> polygon = {{0, 0}, {1000, 0}, {500, 1000}};
  EXPECT_THAT(PolygonToPixels(polygon, 200, 100),
              ElementsAre(PixelPoint{0, 0}, PixelPoint{200, 0}, PixelPoint{100, 100}));
  EXPECT_TRUE(PolygonToPixels({}, 200, 100).empty());
}

}  // namespace
}  // namespace vision_gateway::vision
