// Probability-map PNG masks (as Gemini returns them) → binary masks, and binary masks → PNG.
#ifndef VISION_GATEWAY_SERVICE_IMAGE_MASK_CODEC_H_
#define VISION_GATEWAY_SERVICE_IMAGE_MASK_CODEC_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "service/image/binary_mask.h"

namespace vision_gateway::image {

// Largest decoded mask PNG accepted (Gemini's are 256x256).
inline constexpr int64_t kMaxMaskPngPixels = 4096 * 4096;
// Largest box a mask is resized to.
inline constexpr int64_t kMaxMaskBoxPixels = 100'000'000;

// Decodes a probability-map PNG (any size; grey, grey+alpha, RGB(A) or palette: the first band
// is used; 16-bit is scaled to 8-bit), resizes it to box_width x box_height and thresholds:
// a pixel is set iff its resized value > threshold * 255 (threshold 0.5: value >= 128).
//
// Resampling: the triangle ("bilinear") kernel of Pillow's BILINEAR resize, separable. Pixel
// centres are at i + 0.5 in both grids: output pixel i samples source position
// (i + 0.5) * src / dst - 0.5. When upscaling this is plain bilinear interpolation with edge
// pixels clamped; when downscaling the kernel widens by the scale factor so every source pixel
// contributes (no aliasing). Values stay in floating point (no 8-bit rounding between passes).
//
// Errors (INVALID_ARGUMENT): empty input, not a PNG, corrupt or truncated PNG, a PNG larger than
// kMaxMaskPngPixels, a box of less than 1x1 or more than kMaxMaskBoxPixels, a threshold outside
// [0, 1].
absl::StatusOr<BinaryMask> MaskFromPng(std::string_view png, int box_width, int box_height,
                                       double threshold);

// The same into `out`, whose storage is reused (a caller decoding many masks allocates, zeroes
// and page-faults a large box once, not per mask). On error `out` is unspecified.
absl::Status MaskFromPng(std::string_view png, int box_width, int box_height, double threshold,
                         BinaryMask& out);

// An 8-bit greyscale PNG of the mask's size: 255 where set, 0 elsewhere. Returns an empty string
// for a mask without pixels or whose data does not match its size.
std::string EncodeMaskPng(const BinaryMask& mask);

}  // namespace vision_gateway::image

#endif  // VISION_GATEWAY_SERVICE_IMAGE_MASK_CODEC_H_
