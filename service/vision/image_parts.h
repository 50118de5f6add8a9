// vision.v1.Image → Gemini parts.
#ifndef VISION_GATEWAY_SERVICE_VISION_IMAGE_PARTS_H_
#define VISION_GATEWAY_SERVICE_VISION_IMAGE_PARTS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "service/gemini/types.h"
#include "service/vision/vision_options.h"
#include "service/vision/v1.h"

namespace vision_gateway::vision {

// Builds the part for `image` (field path `field` names it in errors, e.g. "images[2]").
// Inline bytes are moved out of the request, not copied; their type is sniffed (the caller's
// mime_type is only a hint). A file reference ("files/<id>" or this gateway's Gemini file URI;
// nothing else) becomes a pending fileData part (file_parts.h) that ResolveParts completes.
absl::StatusOr<gemini::Part> ToImagePart(v1::Image& image, const std::string& field,
                                         const VisionOptions& options);

// The gateway's token estimate for one image (token_estimate.h): from the upright size of inline
// bytes or the size in a gateway file id; 258 for other file references or bytes whose size
// cannot be read.
int64_t EstimateImageTokensOf(const v1::Image& image);

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_IMAGE_PARTS_H_
