// Caption: images + prompt → streamed text.
#ifndef VISION_GATEWAY_SERVICE_VISION_CAPTION_TASK_H_
#define VISION_GATEWAY_SERVICE_VISION_CAPTION_TASK_H_

#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/common/thread_pool.h"
#include "service/gemini/gemini_client.h"
#include "service/telemetry/call_record.h"
#include "service/vision/file_service.h"
#include "service/vision/vision_options.h"
#include "service/vision/v1.h"

namespace vision_gateway::vision {

inline constexpr char kDefaultCaptionPrompt[] = "Caption this image.";

// Where a task's results go. Called on I/O threads; must not block. on_done runs exactly once,
// after the last on_response.
template <typename Response>
struct TaskCallbacks {
  absl::AnyInvocable<void(Response)> on_response;
  absl::AnyInvocable<void(absl::Status)> on_done;
};

// Turns the upstream chunks of one Caption into CaptionResponses: each chunk's answer text is
// one CaptionResponse; the chunk carrying finishReason also carries usage, finish_reason and
// model_version. The online Caption streams through it; a batch item's one response goes
// through it whole (batch_results.h).
class CaptionStream {
 public:
  CaptionStream(TaskCallbacks<v1::CaptionResponse> callbacks, std::string model,
                std::shared_ptr<RerouteReporter> reroutes);
  void OnChunk(gemini::GenerateContentResponse chunk);
  // Ends the stream with `status` in the caller's terms (ToCallerStatus).
  void OnDone(absl::Status status);

 private:
  TaskCallbacks<v1::CaptionResponse> callbacks_;
  const std::string model_;
  const std::shared_ptr<RerouteReporter> reroutes_;
  bool finished_ = false;
};

// The Gemini request for a Caption (or CountTokens) call: every image part, then the prompt.
// Moves image bytes out of `request`.
absl::StatusOr<gemini::Content> BuildCaptionContent(v1::CaptionRequest& request,
                                                    const VisionOptions& options);

// Every Start* function takes the gRPC call's CallRecord (may be null) and passes it upstream.
//
// Validates the request and starts the upstream stream. On a validation error nothing starts and
// no callback runs. Each upstream chunk's answer text becomes one CaptionResponse; the response of
// the chunk that carries finishReason also carries usage, finish_reason and model_version (SAFETY,
// RECITATION... end the stream normally with that finish reason). A blocked prompt fails with
// INVALID_ARGUMENT, ErrorInfo CONTENT_BLOCKED (metadata block_reason). Errors are in the caller's
// terms (ToCallerStatus, upstream_errors.h).
//
// With `files` (the server always passes it), file references are checked and waited for, and
// inline images over the request limit go to the Files API first (file_parts.h). Without it, a
// file reference is INVALID_ARGUMENT. `files` is copied: its owner_tag decides which files the
// call may use and tags the files it creates (file isolation, file_service.h).
absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartCaption(
    gemini::GenerateStub& gemini, const VisionOptions& options, v1::CaptionRequest request,
    absl::Time deadline, TaskCallbacks<v1::CaptionResponse> callbacks,
    std::shared_ptr<telemetry::CallRecord> record = nullptr, const FilesContext* files = nullptr);

// Counts tokens of the Caption request these images and prompt make, plus the gateway's own
// estimate for the images. The image count is checked first (on the calling thread, before any
// image is looked at); the images are probed and the request built on `cpu` (a full queue:
// RESOURCE_EXHAUSTED, ErrorInfo SERVER_OVERLOADED); the estimate is summed in 64 bits and
// saturates at INT32_MAX. The request's media_resolution is sent with each image part.
absl::StatusOr<std::shared_ptr<gemini::PendingCall>> StartCountTokens(
    gemini::GenerateStub& gemini, ThreadPool& cpu, const VisionOptions& options,
    v1::CountTokensRequest request, absl::Time deadline,
    absl::AnyInvocable<void(absl::StatusOr<v1::CountTokensResponse>)> done,
    std::shared_ptr<telemetry::CallRecord> record = nullptr, const FilesContext* files = nullptr);

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_CAPTION_TASK_H_
