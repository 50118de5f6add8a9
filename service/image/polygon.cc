#include "service/image/polygon.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

namespace vision_gateway::image {
namespace {

struct Crossing {
  double x;
  int winding;  // +1 for an edge going down (y increasing), -1 going up
};

// Sets mask pixels of `row` whose centres x_c = region_x + i + 0.5 satisfy xa <= x_c < xb.
void FillSpan(double xa, double xb, int region_x, int width, uint8_t* row) {
  const double first = std::ceil(xa - 0.5 - region_x);
  const double end = std::ceil(xb - 0.5 - region_x);  // exclusive
  const int lo = static_cast<int>(std::clamp(first, 0.0, static_cast<double>(width)));
  const int hi = static_cast<int>(std::clamp(end, 0.0, static_cast<double>(width)));
  if (lo < hi) std::fill(row + lo, row + hi, uint8_t{1});
}

}  // namespace

double PolygonDoubleArea(std::span<const PointF> points) {
  double sum = 0;
  const size_t n = points.size();
  for (size_t i = 0; i < n; ++i) {
    const PointF& a = points[i];
    const PointF& b = points[(i + 1) % n];
    sum += a.x * b.y - b.x * a.y;
  }
  return sum;
}

BinaryMask RasterizePolygon(std::span<const PointF> points, const PixelRect& region,
                            FillRule rule) {
  BinaryMask mask;
  if (region.width < 1 || region.height < 1) return mask;
  mask.width = region.width;
  mask.height = region.height;
  mask.data.assign(static_cast<size_t>(region.width) * region.height, 0);

  if (points.size() < 3) return mask;
  for (const PointF& p : points) {
    if (!std::isfinite(p.x) || !std::isfinite(p.y)) return mask;
  }
  const double area = PolygonDoubleArea(points);
  if (!std::isfinite(area) || area == 0.0) return mask;

  const size_t n = points.size();
  std::vector<Crossing> crossings;
  crossings.reserve(n);
  for (int j = 0; j < region.height; ++j) {
    const double yc = region.y + j + 0.5;
    crossings.clear();
    for (size_t i = 0; i < n; ++i) {
      const PointF& a = points[i];
      const PointF& b = points[(i + 1) % n];
      // Half-open in y, so a vertex shared by two edges is counted once and horizontal edges
      // never cross.
      int winding = 0;
      if (a.y <= yc && yc < b.y) {
        winding = 1;
      } else if (b.y <= yc && yc < a.y) {
        winding = -1;
      } else {
        continue;
      }
      const double x = a.x + (yc - a.y) * (b.x - a.x) / (b.y - a.y);
      crossings.push_back({x, winding});
    }
    if (crossings.empty()) continue;
    std::sort(crossings.begin(), crossings.end(),
              [](const Crossing& l, const Crossing& r) { return l.x < r.x; });
    uint8_t* row = &mask.data[static_cast<size_t>(j) * region.width];
    if (rule == FillRule::kEvenOdd) {
      for (size_t k = 0; k + 1 < crossings.size(); k += 2) {
        FillSpan(crossings[k].x, crossings[k + 1].x, region.x, region.width, row);
      }
    } else {
      int winding = 0;
      for (size_t k = 0; k + 1 < crossings.size(); ++k) {
        winding += crossings[k].winding;
        if (winding != 0) {
          FillSpan(crossings[k].x, crossings[k + 1].x, region.x, region.width, row);
        }
      }
    }
  }
  return mask;
}

}  // namespace vision_gateway::image
