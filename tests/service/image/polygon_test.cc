#include "service/image/polygon.h"

#include <cmath>
#include <limits>
#include <numbers>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vision_gateway::image {
namespace {

uint8_t At(const BinaryMask& m, int x, int y) { return m.data[y * m.width + x]; }

const std::vector<PointF> kSquare = {{10, 10}, {20, 10}, {20, 20}, {10, 20}};

TEST(RasterizePolygonTest, AxisAlignedSquareCoversExactlyItsArea) {
  for (FillRule rule : {FillRule::kNonZero, FillRule::kEvenOdd}) {
    const BinaryMask m = RasterizePolygon(kSquare, {0, 0, 30, 30}, rule);
    ASSERT_EQ(m.width, 30);
    ASSERT_EQ(m.height, 30);
    EXPECT_EQ(MaskArea(m), 100);
    for (int y = 0; y < 30; ++y) {
      for (int x = 0; x < 30; ++x) {
        const bool inside = x >= 10 && x < 20 && y >= 10 && y < 20;
        EXPECT_EQ(At(m, x, y), inside ? 1 : 0) << x << "," << y;
      }
    }
  }
}

TEST(RasterizePolygonTest, UsesRegionCoordinates) {
  // Region covers image pixels 5..14 in x and y; the square covers 10..19.
  const BinaryMask m = RasterizePolygon(kSquare, {5, 5, 10, 10});
  ASSERT_EQ(m.width, 10);
  EXPECT_EQ(MaskArea(m), 25);
  EXPECT_EQ(At(m, 4, 4), 0);
  EXPECT_EQ(At(m, 5, 5), 1);
  EXPECT_EQ(At(m, 9, 9), 1);
}

TEST(RasterizePolygonTest, ReversedPointOrderGivesTheSameMask) {
  std::vector<PointF> reversed(kSquare.rbegin(), kSquare.rend());
  EXPECT_EQ(RasterizePolygon(reversed, {0, 0, 30, 30}).data,
            RasterizePolygon(kSquare, {0, 0, 30, 30}).data);
}

TEST(RasterizePolygonTest, RightTriangleSamplesPixelCentres) {
  // Area 5000. Pixel (i, j) is inside iff its centre satisfies (i + .5) + (j + .5) < 100, i.e.
  // i + j <= 98: row j has 99 - j pixels for j = 0..98, so 99 * 100 / 2 = 4950 in total.
  const std::vector<PointF> triangle = {{0, 0}, {100, 0}, {0, 100}};
  const BinaryMask m = RasterizePolygon(triangle, {0, 0, 100, 100});
  EXPECT_EQ(MaskArea(m), 4950);
  EXPECT_NEAR(static_cast<double>(MaskArea(m)), 5000.0, 0.02 * 5000);
  EXPECT_EQ(At(m, 98, 0), 1);
  EXPECT_EQ(At(m, 99, 0), 0);
}

TEST(RasterizePolygonTest, SlantedTriangleAreaIsClose) {
  const std::vector<PointF> triangle = {{12.3, 7.9}, {187.6, 44.1}, {61.2, 150.8}};
  const double area = std::fabs(PolygonDoubleArea(triangle)) / 2;
  const BinaryMask m = RasterizePolygon(triangle, {0, 0, 200, 200});
  EXPECT_NEAR(static_cast<double>(MaskArea(m)), area, 0.02 * area);
}

TEST(RasterizePolygonTest, CircleAreaIsClose) {
  std::vector<PointF> circle;
  for (int k = 0; k < 360; ++k) {
    const double a = k * std::numbers::pi / 180;
    circle.push_back({500 + 300 * std::cos(a), 400 + 300 * std::sin(a)});
  }
  const double area = std::fabs(PolygonDoubleArea(circle)) / 2;
  const BinaryMask m = RasterizePolygon(circle, {100, 50, 800, 700});
  EXPECT_NEAR(static_cast<double>(MaskArea(m)), area, 0.005 * area);
}

TEST(RasterizePolygonTest, VerticesOnSampleRowsCountOnce) {
  // A diamond whose left and right vertices lie exactly on the sample row y = 10.5: each is
  // shared by two edges and must give one crossing. Half-width at row j is 10 (1 - |j + .5 -
  // 10.5| / 5), so the rows hold 0, 4, 8, 12, 16, 20, 16, 12, 8, 4, 0 pixels: 100 = the area.
  const std::vector<PointF> diamond = {{15, 5.5}, {25, 10.5}, {15, 15.5}, {5, 10.5}};
  for (FillRule rule : {FillRule::kNonZero, FillRule::kEvenOdd}) {
    const BinaryMask m = RasterizePolygon(diamond, {0, 0, 30, 20}, rule);
    EXPECT_EQ(MaskArea(m), 100);
    int row10 = 0;
    for (int x = 0; x < 30; ++x) row10 += At(m, x, 10);
    EXPECT_EQ(row10, 20);
    EXPECT_EQ(At(m, 5, 10), 1);
    EXPECT_EQ(At(m, 24, 10), 1);
    EXPECT_EQ(At(m, 25, 10), 0);
  }
}

TEST(RasterizePolygonTest, NotchTouchingASampleRowAddsNoCrossing) {
  // A V-notch cut into the top edge whose bottom vertex (15, 10.5) lies on the sample row of
  // row 10: the notch only touches that row, so the row is full (x = 5..24). Area 20 * 10 minus
  // the notch 6 * 5.5 / 2 = 183.5.
  const std::vector<PointF> notched = {{5, 5},  {12, 5},  {15, 10.5}, {18, 5},
                                       {25, 5}, {25, 15}, {5, 15}};
  for (FillRule rule : {FillRule::kNonZero, FillRule::kEvenOdd}) {
    const BinaryMask m = RasterizePolygon(notched, {0, 0, 30, 20}, rule);
    int row10 = 0;
    for (int x = 0; x < 30; ++x) row10 += At(m, x, 10);
    EXPECT_EQ(row10, 20);
    EXPECT_EQ(At(m, 15, 10), 1);
    EXPECT_EQ(At(m, 15, 9), 0);
    EXPECT_NEAR(static_cast<double>(MaskArea(m)), 183.5, 3);
  }
}

TEST(RasterizePolygonTest, AdjacentPolygonsShareNoPixel) {
  // The square split along its diagonal: the halves cover it exactly once.
  const BinaryMask a =
      RasterizePolygon(std::vector<PointF>{{10, 10}, {20, 10}, {10, 20}}, {0, 0, 30, 30});
  const BinaryMask b =
      RasterizePolygon(std::vector<PointF>{{20, 10}, {20, 20}, {10, 20}}, {0, 0, 30, 30});
  int64_t both = 0, either = 0;
  for (size_t i = 0; i < a.data.size(); ++i) {
    both += a.data[i] && b.data[i];
    either += a.data[i] || b.data[i];
  }
  EXPECT_EQ(both, 0);
  EXPECT_EQ(either, 100);
}

TEST(RasterizePolygonTest, FillRulesDifferForSelfIntersectingPolygons) {
  // A pentagram: the central pentagon has winding number 2 (inside for non-zero, outside for
  // even-odd); the five tips have winding number 1 (inside for both).
  std::vector<PointF> star;
  for (int k = 0; k < 5; ++k) {
    const double a = -std::numbers::pi / 2 + k * 4 * std::numbers::pi / 5;
    star.push_back({50 + 45 * std::cos(a), 50 + 45 * std::sin(a)});
  }
  const BinaryMask nonzero = RasterizePolygon(star, {0, 0, 100, 100}, FillRule::kNonZero);
  const BinaryMask evenodd = RasterizePolygon(star, {0, 0, 100, 100}, FillRule::kEvenOdd);
  EXPECT_EQ(At(nonzero, 50, 50), 1);
  EXPECT_EQ(At(evenodd, 50, 50), 0);
  EXPECT_EQ(At(nonzero, 50, 12), 1);  // the top tip
  EXPECT_EQ(At(evenodd, 50, 12), 1);
  EXPECT_GT(MaskArea(nonzero), MaskArea(evenodd));
}

TEST(RasterizePolygonTest, DegeneratePolygonsGiveAnEmptyMask) {
  const PixelRect region{0, 0, 20, 20};
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const std::vector<PointF>& points : std::vector<std::vector<PointF>>{
           {},
           {{1, 1}, {10, 10}},
           {{1, 1}, {5, 5}, {10, 10}},            // collinear: zero area
           {{1, 1}, {10, 1}, {10, 10}, {10, 1}},  // folds back onto itself
           {{1, 1}, {10, nan}, {1, 10}}}) {
    const BinaryMask m = RasterizePolygon(points, region);
    EXPECT_EQ(m.width, 20);
    EXPECT_EQ(m.height, 20);
    EXPECT_EQ(MaskArea(m), 0);
  }
  const BinaryMask none = RasterizePolygon(kSquare, {0, 0, 0, 5});
  EXPECT_EQ(none.width, 0);
  EXPECT_TRUE(none.data.empty());
}

TEST(RasterizePolygonTest, ClipsToTheRegion) {
  const std::vector<PointF> big = {{-1000, -1000}, {1000, -1000}, {1000, 1000}, {-1000, 1000}};
  EXPECT_EQ(MaskArea(RasterizePolygon(big, {3, 4, 7, 9})), 63);
}

TEST(PolygonDoubleAreaTest, IsSignedTwiceTheArea) {
  EXPECT_DOUBLE_EQ(PolygonDoubleArea(kSquare), 200);
  std::vector<PointF> reversed(kSquare.rbegin(), kSquare.rend());
  EXPECT_DOUBLE_EQ(PolygonDoubleArea(reversed), -200);
}

}  // namespace
}  // namespace vision_gateway::image
