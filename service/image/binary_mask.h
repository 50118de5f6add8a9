// A binary mask over a rectangle of pixels, and the rectangle type used by the mask functions.
#ifndef VISION_GATEWAY_SERVICE_IMAGE_BINARY_MASK_H_
#define VISION_GATEWAY_SERVICE_IMAGE_BINARY_MASK_H_

#include <cstdint>
#include <vector>

namespace vision_gateway::image {

// A rectangle in full-image pixels: columns [x, x + width), rows [y, y + height).
struct PixelRect {
  int x = 0;
  int y = 0;
  int width = 0;
  int height = 0;
};

// width x height pixels, row-major; each byte is 0 (outside) or 1 (inside).
struct BinaryMask {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> data;
};

// Number of pixels set (non-zero bytes) in `mask`.
int64_t MaskArea(const BinaryMask& mask);

}  // namespace vision_gateway::image

#endif  // VISION_GATEWAY_SERVICE_IMAGE_BINARY_MASK_H_
