#include "client/overlay.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "tests/testing/test_images.h"

namespace vision_gateway::client {
namespace {

using vision_gateway::testing::Decode;
using vision_gateway::testing::Encode;
using vision_gateway::testing::MakePixels;
using vision_gateway::testing::Pixels;

class OverlayTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(InitOverlay("overlay_test").ok()); }

  static bool Differs(const Pixels& a, int ax, int ay, const Pixels& b, int bx, int by) {
    int distance = 0;
    for (int band = 0; band < 3; ++band) {
      distance += std::abs(a.at(ax, ay, band) - b.at(bx, by, band));
    }
    return distance > 24;
  }
};

::vision::v1::BoundingBox Box(int x0, int y0, int x1, int y1) {
  ::vision::v1::BoundingBox box;
  box.set_x_min(x0);
  box.set_y_min(y0);
  box.set_x_max(x1);
  box.set_y_max(y1);
  return box;
}

// A 60x40 light image stored with EXIF orientation 6 is drawn on upright, 40x60: every pixel of
// the box's edge changes, pixels well away from it (and from its label) do not.
TEST_F(OverlayTest, DetectionBoxOnTheUprightImage) {
  Pixels stored = MakePixels(60, 40, 3, 235);
  auto jpeg = Encode(stored, ".jpg", /*orientation=*/6);
  ASSERT_TRUE(jpeg.has_value());
  Overlay overlay;
  ::vision::v1::Detection& d = overlay.detections.emplace_back();
  d.set_label("cup");
  *d.mutable_box() = Box(10, 30, 30, 50);
  auto png = DrawOverlay(*jpeg, 40, 60, overlay);
  ASSERT_TRUE(png.ok()) << png.status();
  Pixels out = Decode(*png).pixels;
  ASSERT_EQ(out.width, 40);
  ASSERT_EQ(out.height, 60);
  for (int x = 10; x < 30; ++x) {
    EXPECT_TRUE(Differs(out, x, 30, stored, 0, 0)) << x;
    EXPECT_TRUE(Differs(out, x, 49, stored, 0, 0)) << x;
  }
  for (int y = 30; y < 50; ++y) {
    EXPECT_TRUE(Differs(out, 10, y, stored, 0, 0)) << y;
    EXPECT_TRUE(Differs(out, 29, y, stored, 0, 0)) << y;
  }
  EXPECT_FALSE(Differs(out, 20, 40, stored, 0, 0));  // the box's inside
  EXPECT_FALSE(Differs(out, 38, 58, stored, 0, 0));  // a far corner
}

// Every pixel of the mask is tinted; pixels of the box outside the mask are not.
TEST_F(OverlayTest, MaskOverlayCoversTheMask) {
  auto base = Encode(MakePixels(64, 48, 3, 240), ".png");
  ASSERT_TRUE(base.has_value());
  Pixels mask = MakePixels(20, 10, 1, 0);
  for (int y = 0; y < 10; ++y) {
    for (int x = 0; x < 10; ++x) mask.at(x, y) = 255;  // the left half of the box
  }
  Overlay overlay;
  ::vision::v1::Mask& m = overlay.masks.emplace_back();
  m.set_label("a<b&c");  // Pango markup characters are drawn, not parsed
  *m.mutable_box() = Box(30, 30, 50, 40);
  m.set_png(*Encode(mask, ".png"));
  auto png = DrawOverlay(*base, 64, 48, overlay);
  ASSERT_TRUE(png.ok()) << png.status();
  Pixels out = Decode(*png).pixels;
  Pixels before = Decode(*base).pixels;
  for (int y = 30; y < 40; ++y) {
    for (int x = 30; x < 40; ++x) EXPECT_TRUE(Differs(out, x, y, before, x, y)) << x << "," << y;
    for (int x = 42; x < 50; ++x) EXPECT_FALSE(Differs(out, x, y, before, x, y)) << x << "," << y;
  }
}

TEST_F(OverlayTest, RefusesGeometryForAnotherSize) {
  auto png = Encode(MakePixels(64, 48, 3, 240), ".png");
  ASSERT_TRUE(png.has_value());
  EXPECT_EQ(DrawOverlay(*png, 48, 64, Overlay()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(DrawOverlay("not an image", 64, 48, Overlay()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vision_gateway::client
