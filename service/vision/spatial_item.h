// One detection/segmentation item as the model writes it, parsed from one JSON array element.
#ifndef VISION_GATEWAY_SERVICE_VISION_SPATIAL_ITEM_H_
#define VISION_GATEWAY_SERVICE_VISION_SPATIAL_ITEM_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace vision_gateway::vision {

struct SpatialItem {
  enum class MaskKind { kNone, kPng, kPolygon };

  std::string label;               // "object" when the model gave none (or an empty one)
  std::array<double, 4> box_2d{};  // as given: ymin, xmin, ymax, xmax (normally 0..1000)
  MaskKind mask_kind = MaskKind::kNone;
  std::string mask_png;  // decoded PNG bytes (kPng)
  // kPolygon: [x, y] points, normally 0..1000, x first as Gemini gives it (unlike box_2d).
  std::vector<std::pair<double, double>> polygon;
};

// The label used when an item has no label, a null one or an empty one.
inline constexpr std::string_view kDefaultLabel = "object";

// Parses one element emitted by JsonArrayStreamParser. All failures are INVALID_ARGUMENT:
//   - not valid JSON / not an object: "malformed item";
//   - "box_2d" missing, or not an array of exactly 4 finite JSON numbers (integers or floats;
//     numeric strings are rejected): "malformed box_2d";
//   - "label" present but neither a string nor null: "malformed label";
//   - want_mask and the mask is unusable: "degenerate mask" (see below).
// Keys may come in any order; unknown keys are ignored. Values are not range-checked here
// (NormalizeBox in geometry.h clamps boxes).
//
// When want_mask is false "mask" is ignored and mask_kind is kNone. When it is true, "mask" must be
//   - a string "data:<type>;base64,<payload>" or bare base64 (standard alphabet, optional '='
//     padding; the URL-safe alphabet and embedded whitespace are rejected). The decoded bytes
//     must start with the 8-byte PNG signature → kPng. Seg-token strings such as
//     "<start_of_mask><seg_35>..." and bad base64 are degenerate; or
//   - an array of at least 3 points, each an array of exactly 2 finite numbers [x, y] →
//     kPolygon. When the model nests polygons ([[[x,y],...], ...], several polygons) only the
//     first polygon is taken (descending through first elements at any depth).
// A missing or null mask, or one of any other type, is degenerate.
//
// Bounds (SpatialItemLimits), against answers that would cost the gateway unbounded CPU or
// memory: a polygon of more than max_polygon_points points (rasterising is O(rows x points)) and
// a PNG whose IHDR declares more than max_mask_png_pixels pixels (checked before any decoding)
// are degenerate too.
struct SpatialItemLimits {
  int max_polygon_points = 10'000;
  int64_t max_mask_png_pixels = 1024 * 1024;
};
absl::StatusOr<SpatialItem> ParseSpatialItem(std::string_view element_json, bool want_mask,
                                             const SpatialItemLimits& limits = {});

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_SPATIAL_ITEM_H_
