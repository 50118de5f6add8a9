// Settings of the vision layer, filled from flags in main.cc.
#ifndef VISION_GATEWAY_SERVICE_VISION_VISION_OPTIONS_H_
#define VISION_GATEWAY_SERVICE_VISION_VISION_OPTIONS_H_

#include <cstdint>
#include <string>

#include "service/vision/cost_guard.h"

namespace vision_gateway::vision {

struct VisionOptions {
  // Model used when a request names none.
  std::string default_model = "gemini-2.5-flash";
  // Prefix that turns "files/abc" into a Gemini file URI: {files_base_uri}/files/abc.
  std::string files_base_uri = "https://generativelanguage.googleapis.com/v1beta";
  // Most images one request may carry (Gemini's limit is 3,600).
  int max_images_per_request = 3600;
  // Largest decoded image accepted (width * height), against decompression bombs.
  int64_t max_image_pixels = 50'000'000;
  // Server default for Detect/Segment downscaling when the request gives no max_dimension (0: none).
  int default_max_dimension = 0;
  // Allowed models and per-request spending caps (server flags, per-caller overrides).
  CostLimits cost;
};

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_VISION_OPTIONS_H_
