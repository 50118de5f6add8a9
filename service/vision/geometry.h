// Conversions between Gemini's normalised 0..1000 coordinates and image pixels.
#ifndef VISION_GATEWAY_SERVICE_VISION_GEOMETRY_H_
#define VISION_GATEWAY_SERVICE_VISION_GEOMETRY_H_

#include <array>
#include <optional>
#include <utility>
#include <vector>

#include "service/image/polygon.h"

namespace vision_gateway::vision {

inline constexpr int kNormScale = 1000;

// A box in Gemini's normalised space: 0..1000, y first as in box_2d. min < max on both axes.
struct NormBox {
  int y_min = 0;
  int x_min = 0;
  int y_max = 0;
  int x_max = 0;

  friend bool operator==(const NormBox&, const NormBox&) = default;
};

// A box in image pixels, x first. Edges are pixel-grid lines (the box covers columns
// x_min..x_max-1 and rows y_min..y_max-1); 0 <= min <= max <= size.
struct PixelBox {
  int x_min = 0;
  int y_min = 0;
  int x_max = 0;
  int y_max = 0;

  friend bool operator==(const PixelBox&, const PixelBox&) = default;
};

// A point in image pixels (continuous coordinates, 0..size): the rasteriser's own point type, so
// converted polygons go straight to image::RasterizePolygon.
using PixelPoint = image::PointF;

// box_2d = {ymin, xmin, ymax, xmax} as the model gave it. Swapped min/max are reordered, each
// value is clamped to [0, 1000] and rounded to the nearest integer, halves away from zero
// (std::round: 499.5 → 500). Returns nullopt when any value is NaN/infinite or the box has zero
// area after clamping and rounding (y_min == y_max or x_min == x_max).
std::optional<NormBox> NormalizeBox(const std::array<double, 4>& box_2d);

// Pixel edge = floor(v * size / 1000) computed exactly in 64-bit integers, x from width and y
// from height, so v = 1000 maps to size and the result is always within [0, size]. Values of
// the NormBox outside 0..1000 are clamped first; a negative size is treated as 0. The result may
// have zero area for a tiny box on a small image; callers decide whether to drop it.
PixelBox ToPixelBox(const NormBox& box, int width, int height);

// A polygon point {x, y} (0..1000, x first as Gemini gives it) → pixel coordinates in the full
// image: x * width / 1000, y * height / 1000 after clamping x and y to [0, 1000] (NaN → 0).
PixelPoint PolygonPointToPixel(const std::pair<double, double>& point, int width, int height);

// PolygonPointToPixel applied to every point, order preserved.
std::vector<PixelPoint> PolygonToPixels(const std::vector<std::pair<double, double>>& polygon,
                                        int width, int height);

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_GEOMETRY_H_
