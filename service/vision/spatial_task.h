// Detect and Segment: one image + prompt → a stream of typed objects in the caller's pixel frame.
//
// Stream shape: ImageInfo first, then one Detection/Mask per object as soon as the model's JSON
// array closes that object, then a Summary. The model's text arrives over many SSE events and is
// parsed incrementally (JsonArrayStreamParser); each item is validated, its box normalised and
// converted to pixels of the upright original image, its mask (Segment) resized, thresholded and
// encoded. Items that cannot be used are dropped and counted in Summary.dropped.
#ifndef VISION_GATEWAY_SERVICE_VISION_SPATIAL_TASK_H_
#define VISION_GATEWAY_SERVICE_VISION_SPATIAL_TASK_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/common/thread_pool.h"
#include "service/gemini/gemini_client.h"
#include "service/vision/caption_task.h"
#include "service/vision/file_service.h"
#include "service/vision/spatial_request.h"
#include "service/vision/v1.h"
#include "service/vision/vision_options.h"

namespace vision_gateway::vision {

// `record` (may be null) gets the objects emitted and the items dropped, by reason.
//
// Validates the request at once (errors: nothing starts, no callback runs), then prepares the
// image on `cpu` (sniff, pixel limit, EXIF orientation, downscale) and streams from Gemini.
// With `files`, image.file is accepted: the size comes from the gateway's file id (ImageInfo says
// size_unknown for other files, whose objects then carry normalized boxes only), the file is
// waited for while PROCESSING (file_service.h), and max_dimension does not apply. Prepared bytes
// over max_inline_request_bytes go through the Files API. `files` is copied: its owner_tag
// decides which files the call may use (file isolation, file_service.h).
// Errors after the start arrive through on_done: INVALID_ARGUMENT for a bad image, INTERNAL with
// ErrorInfo MODEL_OUTPUT_INVALID when the model's answer holds no JSON array, upstream errors.
absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartDetect(
    gemini::GenerateStub& gemini, ThreadPool& cpu, const VisionOptions& options,
    v1::DetectRequest request, absl::Time deadline, TaskCallbacks<v1::DetectResponse> callbacks,
    std::shared_ptr<telemetry::CallRecord> record = nullptr, const FilesContext* files = nullptr);

absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartSegment(
    gemini::GenerateStub& gemini, ThreadPool& cpu, const VisionOptions& options,
    v1::SegmentRequest request, absl::Time deadline, TaskCallbacks<v1::SegmentResponse> callbacks,
    std::shared_ptr<telemetry::CallRecord> record = nullptr, const FilesContext* files = nullptr);

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_SPATIAL_TASK_H_
