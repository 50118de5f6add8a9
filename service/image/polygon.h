// Polygon rasterisation into a binary mask (Gemini's newer models describe masks as polygons).
#ifndef VISION_GATEWAY_SERVICE_IMAGE_POLYGON_H_
#define VISION_GATEWAY_SERVICE_IMAGE_POLYGON_H_

#include <span>

#include "service/image/binary_mask.h"

namespace vision_gateway::image {

// A point in full-image pixel coordinates: (0, 0) is the top-left corner of the top-left pixel,
// pixel (i, j) covers [i, i + 1) x [j, j + 1).
struct PointF {
  double x = 0;
  double y = 0;

  friend bool operator==(const PointF&, const PointF&) = default;
};

enum class FillRule { kEvenOdd, kNonZero };

// Rasterises the closed polygon `points` (full-image coordinates; the last point connects to the
// first) into a mask of `region`'s size: mask pixel (i, j) is image pixel (region.x + i,
// region.y + j) and is set iff its centre (region.x + i + 0.5, region.y + j + 0.5) is inside under
// `rule`. Centres exactly on a left or top edge count as inside, on a right or bottom edge as
// outside, so adjacent polygons never share a pixel and an axis-aligned rectangle with integer
// corners covers exactly its area. Degenerate polygons (fewer than 3 points, zero area, a
// non-finite coordinate) give an all-zero mask; a region of less than 1x1 gives a 0x0 mask.
BinaryMask RasterizePolygon(std::span<const PointF> points, const PixelRect& region,
                            FillRule rule = FillRule::kNonZero);

// Twice the signed area (shoelace formula; positive when the points run clockwise in image
// coordinates, y down).
double PolygonDoubleArea(std::span<const PointF> points);

}  // namespace vision_gateway::image

#endif  // VISION_GATEWAY_SERVICE_IMAGE_POLYGON_H_
