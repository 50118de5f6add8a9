// Scene analysis of the emulator: colour naming, component filtering, geometry helpers.
#include "emulator/scene.h"

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "emulator/gemini_api.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/emulator/test_http.h"
#include "tests/testing/status_matchers.h"

namespace vision_gateway::emulator {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAreArray;
using ::vision_gateway::testing::IsOk;
using ::vision_gateway::testing::StatusIs;

struct Canvas {
  int width, height;
  std::vector<uint8_t> rgb;
  Canvas(int w, int h, uint8_t background = 255)
      : width(w), height(h), rgb(static_cast<size_t>(w) * h * 3, background) {}
  void Fill(int x0, int y0, int x1, int y1, uint8_t r, uint8_t g, uint8_t b) {
    for (int y = y0; y < y1; ++y) {
      for (int x = x0; x < x1; ++x) {
        uint8_t* p = &rgb[3 * (static_cast<size_t>(y) * width + x)];
        p[0] = r;
        p[1] = g;
        p[2] = b;
      }
    }
  }
  std::string Png() const {
    absl::StatusOr<std::string> png = EncodePng(rgb.data(), width, height, 3);
    EXPECT_THAT(png, IsOk());
    return png.ok() ? *png : "";
  }
};

std::vector<std::string> Labels(const Scene& scene) {
  std::vector<std::string> labels;
  for (const SceneObject& object : scene.objects) labels.push_back(object.label);
  return labels;
}

TEST(SceneTest, NamesEachHueClass) {
  Canvas canvas(400, 100);
  const uint8_t colours[8][3] = {{230, 30, 30},  {255, 140, 0},  {240, 220, 20}, {30, 180, 40},
                                 {20, 200, 210}, {30, 60, 220},  {130, 40, 220}, {220, 30, 200}};
  for (int i = 0; i < 8; ++i) {
    canvas.Fill(10 + 48 * i, 20, 40 + 48 * i, 80, colours[i][0], colours[i][1], colours[i][2]);
  }
  absl::StatusOr<Scene> scene = AnalyzeImage(canvas.Png());
  ASSERT_THAT(scene, IsOk());
  EXPECT_EQ(scene->width, 400);
  EXPECT_EQ(scene->height, 100);
  EXPECT_TRUE(scene->light_background);
  EXPECT_THAT(Labels(*scene), UnorderedElementsAreArray(ColourNames()));
}

TEST(SceneTest, IgnoresComponentsBelowATenthOfAPercent) {
  Canvas canvas(320, 240);         // 76800 px: the threshold is 77 px
  canvas.Fill(10, 10, 18, 18, 230, 30, 30);   // 64 px: noise
  canvas.Fill(100, 100, 110, 110, 30, 60, 220);  // 100 px: kept
  absl::StatusOr<Scene> scene = AnalyzeImage(canvas.Png());
  ASSERT_THAT(scene, IsOk());
  EXPECT_THAT(Labels(*scene), ElementsAre("blue"));
  EXPECT_EQ(scene->objects[0].area, 100);
}

TEST(SceneTest, TouchingShapesOfDifferentColoursAreSeparateObjectsLargestFirst) {
  Canvas canvas(200, 100);
  canvas.Fill(20, 20, 60, 80, 30, 180, 40);
  canvas.Fill(60, 20, 140, 80, 230, 30, 30);
  absl::StatusOr<Scene> scene = AnalyzeImage(canvas.Png());
  ASSERT_THAT(scene, IsOk());
  ASSERT_THAT(Labels(*scene), ElementsAre("red", "green"));
  const SceneObject& red = scene->objects[0];
  EXPECT_EQ(red.x0, 60);
  EXPECT_EQ(red.x1, 140);
  EXPECT_EQ(red.y0, 20);
  EXPECT_EQ(red.y1, 80);
  EXPECT_TRUE(red.Contains(60, 20));
  EXPECT_FALSE(red.Contains(59, 20));
}

TEST(SceneTest, DarkBackgroundIsReported) {
  Canvas canvas(100, 100, 20);
  canvas.Fill(30, 30, 70, 70, 240, 220, 20);
  absl::StatusOr<Scene> scene = AnalyzeImage(canvas.Png());
  ASSERT_THAT(scene, IsOk());
  EXPECT_FALSE(scene->light_background);
  EXPECT_THAT(Labels(*scene), ElementsAre("yellow"));
}

TEST(SceneTest, UndecodableBytesAreInvalidArgument) {
  EXPECT_THAT(AnalyzeImage("definitely not an image"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ImageDimensions(""), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SceneTest, BoxOfRoundsOutwards) {
  Scene scene;
  scene.width = 320;
  scene.height = 240;
  SceneObject object;
  object.x0 = 40;
  object.x1 = 140;
  object.y0 = 61;
  object.y1 = 179;
  const NormalizedBox box = BoxOf(scene, object);
  EXPECT_EQ(box.ymin, 254);  // floor(61000/240) = 254.17 → 254
  EXPECT_EQ(box.xmin, 125);
  EXPECT_EQ(box.ymax, 746);  // ceil(179000/240) = 745.8 → 746
  EXPECT_EQ(box.xmax, 438);  // ceil(437.5)
}

TEST(SceneTest, ImageTokensFollowTheTileRule) {
  EXPECT_EQ(ImageTokens(960, 540), 1548);
  EXPECT_EQ(ImageTokens(384, 384), 258);
  EXPECT_EQ(ImageTokens(100, 30), 258);
  EXPECT_EQ(ImageTokens(385, 100), 12 * 258);
  EXPECT_EQ(ImageTokens(1000, 1000), 4 * 258);
}

TEST(SceneTest, MaskPngIsA256SquareWithSoftEdges) {
  const testing::TestImage image = testing::MakeShapesImage();
  absl::StatusOr<Scene> scene = AnalyzeImage(image.png);
  ASSERT_THAT(scene, IsOk());
  ASSERT_EQ(scene->objects.size(), 2u);
  const SceneObject& ellipse = scene->objects[1];
  absl::StatusOr<std::string> png = MaskPng(*scene, ellipse, BoxOf(*scene, ellipse));
  ASSERT_THAT(png, IsOk());
  absl::StatusOr<std::pair<int, int>> size = ImageDimensions(*png);
  ASSERT_THAT(size, IsOk());
  EXPECT_EQ(size->first, 256);
  EXPECT_EQ(size->second, 256);
  // IHDR: 8-bit greyscale, as the masks Gemini returns.
  ASSERT_GT(png->size(), 26u);
  EXPECT_EQ(png->substr(1, 3), "PNG");
  EXPECT_EQ(static_cast<int>((*png)[24]), 8);  // bit depth
  EXPECT_EQ(static_cast<int>((*png)[25]), 0);  // colour type: greyscale
}

TEST(SceneTest, RectangleOutlineIsItsFourCorners) {
  Canvas canvas(200, 100);
  canvas.Fill(50, 20, 150, 60, 230, 30, 30);
  absl::StatusOr<Scene> scene = AnalyzeImage(canvas.Png());
  ASSERT_THAT(scene, IsOk());
  ASSERT_EQ(scene->objects.size(), 1u);
  const std::vector<std::pair<int, int>> polygon = OutlinePolygon(*scene, scene->objects[0]);
  EXPECT_THAT(polygon, UnorderedElementsAreArray(std::vector<std::pair<int, int>>{
                           {250, 200}, {750, 200}, {750, 600}, {250, 600}}));
}

TEST(SceneTest, DiagonallyTouchingPixelsShareOneOutline) {
  Canvas canvas(100, 100);
  canvas.Fill(10, 10, 30, 30, 30, 60, 220);
  canvas.Fill(30, 30, 50, 50, 30, 60, 220);  // touches the first square at one corner
  absl::StatusOr<Scene> scene = AnalyzeImage(canvas.Png());
  ASSERT_THAT(scene, IsOk());
  ASSERT_EQ(scene->objects.size(), 1u);  // 8-connected
  EXPECT_EQ(scene->objects[0].area, 800);
  const std::vector<std::pair<int, int>> polygon = OutlinePolygon(*scene, scene->objects[0]);
  std::set<std::pair<int, int>> points(polygon.begin(), polygon.end());
  EXPECT_TRUE(points.count({100, 100}));  // top-left of the first square
  EXPECT_TRUE(points.count({500, 500}));  // bottom-right of the second
}

}  // namespace
}  // namespace vision_gateway::emulator
