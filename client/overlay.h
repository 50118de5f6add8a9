// Draws Detect boxes and Segment masks over the image they were found in, with libvips (boxes,
// translucent masks, outlines; labels rendered by libvips' text operation).
#ifndef VISION_GATEWAY_CLIENT_OVERLAY_H_
#define VISION_GATEWAY_CLIENT_OVERLAY_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "vision/v1/vision.pb.h"

namespace vision_gateway::client {

struct Overlay {
  // Detections, or Masks (box + box-sized PNG), in the order they arrived.
  std::vector<::vision::v1::Detection> detections;
  std::vector<::vision::v1::Mask> masks;
};

// Once per process, before any other call (argv0: the program's name).
absl::Status InitOverlay(const char* argv0);

// Decodes `image_bytes`, turns it upright (EXIF orientation, as the server does), draws `overlay`
// and encodes the result as PNG. Fails when the image cannot be decoded, or when the upright size
// is not `width` x `height` (the size the server's geometry refers to, from its ImageInfo).
absl::StatusOr<std::string> DrawOverlay(const std::string& image_bytes, int width, int height,
                                        const Overlay& overlay);

}  // namespace vision_gateway::client

#endif  // VISION_GATEWAY_CLIENT_OVERLAY_H_
