#include "service/vision/geometry.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace vision_gateway::vision {
namespace {

int ClampRound(double v) {
  return static_cast<int>(std::round(std::clamp(v, 0.0, static_cast<double>(kNormScale))));
}

double ClampNorm(double v) {
  if (std::isnan(v)) return 0;
  return std::clamp(v, 0.0, static_cast<double>(kNormScale));
}

int ToPixel(int v, int size) {
  const int64_t clamped = std::clamp(v, 0, kNormScale);
  const int64_t extent = std::max(size, 0);
  return static_cast<int>(clamped * extent / kNormScale);  // floor: both operands are >= 0
}

}  // namespace

std::optional<NormBox> NormalizeBox(const std::array<double, 4>& box_2d) {
  for (double v : box_2d) {
    if (!std::isfinite(v)) return std::nullopt;
  }
  const auto [y_lo, y_hi] = std::minmax(box_2d[0], box_2d[2]);
  const auto [x_lo, x_hi] = std::minmax(box_2d[1], box_2d[3]);
  NormBox box{.y_min = ClampRound(y_lo),
              .x_min = ClampRound(x_lo),
              .y_max = ClampRound(y_hi),
              .x_max = ClampRound(x_hi)};
  if (box.y_min == box.y_max || box.x_min == box.x_max) return std::nullopt;
  return box;
}

PixelBox ToPixelBox(const NormBox& box, int width, int height) {
  return PixelBox{.x_min = ToPixel(box.x_min, width),
                  .y_min = ToPixel(box.y_min, height),
                  .x_max = ToPixel(box.x_max, width),
                  .y_max = ToPixel(box.y_max, height)};
}

PixelPoint PolygonPointToPixel(const std::pair<double, double>& point, int width, int height) {
  return PixelPoint{.x = ClampNorm(point.first) * std::max(width, 0) / kNormScale,
                    .y = ClampNorm(point.second) * std::max(height, 0) / kNormScale};
}

std::vector<PixelPoint> PolygonToPixels(const std::vector<std::pair<double, double>>& polygon,
                                        int width, int height) {
  std::vector<PixelPoint> out;
  out.reserve(polygon.size());
  for (const auto& point : polygon) out.push_back(PolygonPointToPixel(point, width, height));
  return out;
}

}  // namespace vision_gateway::vision
