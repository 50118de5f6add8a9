// Detect and Segment, request side: checks what can be checked without touching the image and
// builds the upstream Gemini request (system instruction, prompt, JSON schema, model options) that
// the image part is later added to. Internal to service/vision/ (spatial_task.cc).
#ifndef VISION_GATEWAY_SERVICE_VISION_SPATIAL_REQUEST_H_
#define VISION_GATEWAY_SERVICE_VISION_SPATIAL_REQUEST_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "service/gemini/types.h"
#include "service/vision/file_service.h"
#include "service/vision/model_family.h"
#include "service/vision/spatial_item.h"
#include "service/vision/v1.h"
#include "service/vision/vision_options.h"

namespace vision_gateway::vision {

inline constexpr int kDefaultMaxObjects = 25;
inline constexpr int kMaxMaxObjects = 1000;
inline constexpr float kDefaultMaskThreshold = 0.5f;

struct SpatialParams {
  bool segment = false;
  std::string model;
  int max_objects = kDefaultMaxObjects;
  double threshold = kDefaultMaskThreshold;
  int max_dimension = 0;
  int64_t max_pixels = 0;
  std::string file_name;  // "files/<id>" when the image is a file reference
  std::optional<FilesContext> files;  // a copy: the server's is per call
  int64_t max_inline_bytes = 0;
  SpatialItemLimits item_limits;
  gemini::GenerateContentRequest upstream;  // everything but the image part
  std::string part_media_resolution;        // set on the image part (model_family.h)
  std::shared_ptr<RerouteReporter> reroutes;  // VisionOptions::reroutes
  gemini::CacheControl cache = gemini::CacheControl::kUse;  // ModelOptions.cache (#21)
};

// Segment's mask threshold as the request gives it ((0, 1]; 0: kDefaultMaskThreshold), or
// INVALID_ARGUMENT. Shared by the online Segment and batch items.
absl::StatusOr<double> MaskThresholdOf(float threshold);

// Checks what can be checked without touching the image, and builds the upstream request.
// Defined for v1::DetectRequest (segment = false) and v1::SegmentRequest (segment = true).
template <typename Request>
absl::StatusOr<SpatialParams> ValidateSpatialRequest(const Request& request, bool segment,
                                                     const VisionOptions& options,
                                                     const FilesContext* files);

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_SPATIAL_REQUEST_H_
