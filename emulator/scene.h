// Scene analysis of the emulator: decode an image (libvips, EXIF autorotation), find
// saturated-colour blobs on a light background and describe their geometry.
#ifndef VISION_GATEWAY_EMULATOR_SCENE_H_
#define VISION_GATEWAY_EMULATOR_SCENE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace vision_gateway::emulator {

// One blob: 8-connected pixels of one hue class.
struct SceneObject {
  std::string label;           // "red", "orange", "yellow", "green", "cyan", "blue", "purple", "magenta"
  int x0 = 0, y0 = 0;          // bounding box in pixels, inclusive
  int x1 = 0, y1 = 0;          // exclusive
  int64_t area = 0;            // pixels
  std::vector<uint8_t> mask;   // (x1-x0)*(y1-y0), row-major over the box; 1 = in the blob
  int width() const { return x1 - x0; }
  int height() const { return y1 - y0; }
  bool Contains(int x, int y) const {  // image coordinates
    return x >= x0 && x < x1 && y >= y0 && y < y1 && mask[(y - y0) * width() + (x - x0)] != 0;
  }
};

struct Scene {
  int width = 0;
  int height = 0;
  bool light_background = true;
  std::vector<SceneObject> objects;  // largest first
};

// The colour names, in hue order.
const std::vector<std::string>& ColourNames();

// Largest accepted image (pixels, after decoding).
inline constexpr int64_t kMaxImagePixels = int64_t{40} << 20;

// Decodes and analyses. InvalidArgument for bytes that are not a decodable image.
absl::StatusOr<Scene> AnalyzeImage(std::string_view bytes);

// Width and height after EXIF autorotation, from the header only (no pixel decoding).
absl::StatusOr<std::pair<int, int>> ImageDimensions(std::string_view bytes);

// [ymin, xmin, ymax, xmax] normalised to 0..1000, covering the blob's pixels exactly:
// min = floor(p0 * 1000 / size), max = ceil(p1_exclusive * 1000 / size).
struct NormalizedBox {
  int ymin = 0, xmin = 0, ymax = 0, xmax = 0;
};
NormalizedBox BoxOf(const Scene& scene, const SceneObject& object);

// A 256x256 8-bit grey PNG probability map of the blob over `box` (denormalised to pixels),
// with soft (anti-aliased) edges: thresholding at 127 after resizing back gives the blob.
absl::StatusOr<std::string> MaskPng(const Scene& scene, const SceneObject& object,
                                    const NormalizedBox& box);

// The blob's outer outline as a polygon of [x, y] points normalised to 0..1000 (x first),
// simplified to at most `max_points` points.
std::vector<std::pair<int, int>> OutlinePolygon(const Scene& scene, const SceneObject& object,
                                                int max_points = 200);

// Encodes 8-bit grey or RGB pixels as PNG (used by tests and MaskPng).
absl::StatusOr<std::string> EncodePng(const uint8_t* pixels, int width, int height, int bands);

}  // namespace vision_gateway::emulator

#endif  // VISION_GATEWAY_EMULATOR_SCENE_H_
