// libFuzzer target for vision::ParseSpatialItem with small limits. Input: one JSON array element
// as the model writes it. Checks that nothing crashes or leaks (ASan/UBSan) and that
//   - every failure is INVALID_ARGUMENT;
//   - a parsed item has a label (the default when the model gave none) no longer than the input,
//     four finite box numbers, and no mask unless one was asked for;
//   - a polygon has 3..max_polygon_points finite points;
//   - a PNG mask starts with the PNG signature and, when its IHDR is there, declares at most
//     max_mask_png_pixels pixels (the bound is checked before anything decodes it).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "absl/status/status.h"
#include "service/vision/spatial_item.h"

namespace {

using ::vision_gateway::vision::SpatialItem;

constexpr int kMaxPolygonPoints = 16;
constexpr int64_t kMaxMaskPngPixels = 64 * 64;

void Check(bool ok) {
  if (!ok) std::abort();
}

uint32_t BigEndian32(std::string_view b) {
  return (uint32_t{static_cast<uint8_t>(b[0])} << 24) | (uint32_t{static_cast<uint8_t>(b[1])} << 16) |
         (uint32_t{static_cast<uint8_t>(b[2])} << 8) | uint32_t{static_cast<uint8_t>(b[3])};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const ::vision_gateway::vision::SpatialItemLimits limits{
      .max_polygon_points = kMaxPolygonPoints, .max_mask_png_pixels = kMaxMaskPngPixels};
  for (const bool want_mask : {true, false}) {
    auto item = ::vision_gateway::vision::ParseSpatialItem(text, want_mask, limits);
    if (!item.ok()) {
      Check(item.status().code() == absl::StatusCode::kInvalidArgument);
      continue;
    }
    Check(!item->label.empty());
    Check(item->label == ::vision_gateway::vision::kDefaultLabel || item->label.size() <= size);
    for (double v : item->box_2d) Check(std::isfinite(v));
    if (!want_mask) Check(item->mask_kind == SpatialItem::MaskKind::kNone);
    if (want_mask) Check(item->mask_kind != SpatialItem::MaskKind::kNone);
    if (item->mask_kind == SpatialItem::MaskKind::kPolygon) {
      Check(item->polygon.size() >= 3 && item->polygon.size() <= kMaxPolygonPoints);
      for (const auto& [x, y] : item->polygon) Check(std::isfinite(x) && std::isfinite(y));
    } else {
      Check(item->polygon.empty());
    }
    if (item->mask_kind == SpatialItem::MaskKind::kPng) {
      const std::string_view png(item->mask_png);
      Check(png.substr(0, 8) == std::string_view("\x89PNG\r\n\x1a\n", 8));
      if (png.size() >= 24 && png.substr(12, 4) == "IHDR") {
        Check(int64_t{BigEndian32(png.substr(16))} * BigEndian32(png.substr(20)) <=
              kMaxMaskPngPixels);
      }
    } else {
      Check(item->mask_png.empty());
    }
  }
  return 0;
}
