#include "service/vision/spatial_request.h"

#include <cmath>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "service/common/error_reasons.h"
#include "service/common/status_details.h"
#include "service/vision/cost_guard.h"
#include "service/vision/file_id.h"
#include "service/vision/model_options.h"

namespace vision_gateway::vision {
namespace {

constexpr size_t kMaxPromptBytes = 64 * 1024;

std::string SystemInstruction(bool segment, int max_objects) {
  if (segment) {
    return absl::StrFormat(
        "Return segmentation masks as a JSON array of objects. Each object has the 2D bounding "
        "box in the key \"box_2d\" as [ymin, xmin, ymax, xmax] normalized to 0-1000, the "
        "segmentation mask in the key \"mask\", and a text label in the key \"label\". Never use "
        "code fencing. Limit to %d objects. If an object is present multiple times, give each a "
        "distinctive label.",
        max_objects);
  }
  return absl::StrFormat(
      "Return bounding boxes as a JSON array of objects, each with the key \"box_2d\" as [ymin, "
      "xmin, ymax, xmax] normalized to 0-1000 and the key \"label\". Never return masks or code "
      "fencing. Limit to %d objects. If an object is present multiple times, give each a "
      "distinctive label.",
      max_objects);
}

std::string UserText(bool segment, const std::string& prompt) {
  if (segment) {
    const std::string what = prompt.empty() ? "all of the prominent items" : prompt;
    return absl::StrCat("Give the segmentation masks for ", what,
                        ". Output a JSON list of segmentation masks where each entry contains the "
                        "2D bounding box in the key \"box_2d\", the segmentation mask in key "
                        "\"mask\", and the text label in the key \"label\".");
  }
  const std::string what = prompt.empty() ? "all of the prominent items in the image" : prompt;
  return absl::StrCat("Detect ", what,
                      ". The box_2d should be [ymin, xmin, ymax, xmax] normalized to 0-1000.");
}

std::string ResponseSchema(bool segment, int max_objects) {
  const std::string mask =
      segment ? R"(,"mask":{"anyOf":[{"type":"string"},{"type":"array","items":{"type":"array","items":{"type":"number"}}}]})"
              : "";
  return absl::StrCat(
      R"({"type":"array","maxItems":)", max_objects,
      R"(,"items":{"type":"object","properties":{"box_2d":{"type":"array","items":{"type":"integer"},"minItems":4,"maxItems":4},"label":{"type":"string"})",
      mask, R"(},"required":["box_2d","label")", segment ? R"(,"mask")" : "", "]}}");
}

}  // namespace

absl::StatusOr<double> MaskThresholdOf(float threshold) {
  if (std::isnan(threshold) || threshold < 0.0f || threshold > 1.0f ||
      (threshold == 0.0f && std::signbit(threshold))) {
    return absl::InvalidArgumentError("threshold: must be in (0, 1]; 0 means the default 0.5");
  }
  return threshold == 0.0f ? kDefaultMaskThreshold : threshold;
}

template <typename Request>
absl::StatusOr<SpatialParams> ValidateSpatialRequest(const Request& request, bool segment,
                                                     const VisionOptions& options,
                                                     const FilesContext* files) {
  SpatialParams params;
  params.segment = segment;
  if (files != nullptr) params.files = *files;
  params.max_inline_bytes = options.max_inline_request_bytes;
  if (!request.has_image() || request.image().source_case() == v1::Image::SOURCE_NOT_SET) {
    return absl::InvalidArgumentError("image: required (set image.content or image.file)");
  }
  if (request.image().source_case() == v1::Image::kFile) {
    if (files == nullptr) {
      return absl::InvalidArgumentError("image.file: file references are not available here");
    }
    auto name = FileNameOf(request.image().file(), "image.file", options);
    if (!name.ok()) return name.status();
    params.file_name = *std::move(name);
  }
  if (request.prompt().size() > kMaxPromptBytes) {
    return absl::InvalidArgumentError(absl::StrCat("prompt: at most ", kMaxPromptBytes, " bytes"));
  }
  if (request.max_objects() < 0 || request.max_objects() > kMaxMaxObjects) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_objects: must be between 0 (default ", kDefaultMaxObjects, ") and ",
                     kMaxMaxObjects));
  }
  params.max_objects = request.max_objects() == 0 ? kDefaultMaxObjects : request.max_objects();
  if (request.max_dimension() < 0) {
    return absl::InvalidArgumentError("max_dimension: must not be negative");
  }
  params.max_dimension =
      request.max_dimension() > 0 ? request.max_dimension() : options.default_max_dimension;
  params.max_pixels = options.max_image_pixels;
  if (absl::Status s = CheckImageBytes(static_cast<int64_t>(request.image().content().size()),
                                       options.cost);
      !s.ok()) {
    return s;
  }
  params.item_limits = SpatialItemLimits{.max_polygon_points = options.max_polygon_points,
                                         .max_mask_png_pixels = options.max_mask_png_pixels};
  if (static_cast<int64_t>(request.image().content().size()) > options.max_image_bytes) {
    return WithErrorInfo(
        absl::InvalidArgumentError(absl::StrCat("image.content: ", request.image().content().size(),
                                                " bytes; the limit is ", options.max_image_bytes)),
        reasons::kRequestTooLarge, {{"limit", "max_image_bytes"}});
  }

  auto model = ChooseModel(request.options(), options, segment);
  if (!model.ok()) return model.status();
  params.model = *model;
  params.reroutes = options.reroutes;
  params.cache = ToCacheControl(request.options().cache());
  auto fitted = ModelConfigFor(request.options(), params.model,
                               TaskDefaults{.temperature = 0.5f, .minimal_thinking = true},
                               options.cost);
  if (!fitted.ok()) return fitted.status();
  params.part_media_resolution = std::move(fitted->part_media_resolution);
  gemini::GenerationConfig* config = &fitted->config;
  config->response_mime_type = "application/json";
  config->response_json_schema = ResponseSchema(segment, params.max_objects);

  gemini::Content system;
  system.parts.emplace_back().text = SystemInstruction(segment, params.max_objects);
  params.upstream.system_instruction = std::move(system);
  params.upstream.generation_config = std::move(*config);
  gemini::Content& user = params.upstream.contents.emplace_back();
  user.role = "user";
  user.parts.emplace_back().text = UserText(segment, request.prompt());
  return params;
}

template absl::StatusOr<SpatialParams> ValidateSpatialRequest(const v1::DetectRequest&, bool,
                                                              const VisionOptions&,
                                                              const FilesContext*);
template absl::StatusOr<SpatialParams> ValidateSpatialRequest(const v1::SegmentRequest&, bool,
                                                              const VisionOptions&,
                                                              const FilesContext*);

}  // namespace vision_gateway::vision
