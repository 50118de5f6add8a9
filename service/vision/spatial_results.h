// Detect and Segment, result side: the model's text, arriving over many SSE events, parsed
// incrementally (JsonArrayStreamParser) into typed objects in the caller's pixel frame. Each item
// is validated, its box normalised and converted to pixels of the upright original image, its mask
// (Segment) resized, thresholded and encoded; items that cannot be used are dropped and counted in
// the Summary that ends the stream. Internal to service/vision/ (spatial_task.cc).
#ifndef VISION_GATEWAY_SERVICE_VISION_SPATIAL_RESULTS_H_
#define VISION_GATEWAY_SERVICE_VISION_SPATIAL_RESULTS_H_

#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "service/gemini/types.h"
#include "service/image/binary_mask.h"
#include "service/telemetry/call_record.h"
#include "service/vision/caption_task.h"
#include "service/vision/geometry.h"
#include "service/vision/json_array_parser.h"
#include "service/vision/spatial_item.h"
#include "service/vision/spatial_request.h"
#include "service/vision/v1.h"

namespace vision_gateway::vision {

template <typename Response>
constexpr bool kIsSegment = std::is_same_v<Response, v1::SegmentResponse>;

// The result pipeline of one call (Response: v1::DetectResponse or v1::SegmentResponse). Not
// thread-safe: the call runs its steps one at a time, in arrival order. `params` and `callbacks`
// belong to the call and must outlive this; `cancel_upstream` stops the model's stream when its
// answer cannot be used any more.
template <typename Response>
class SpatialResults {
 public:
  SpatialResults(const SpatialParams& params, TaskCallbacks<Response>& callbacks,
                 std::shared_ptr<telemetry::CallRecord> record,
                 absl::AnyInvocable<void()> cancel_upstream)
      : params_(params),
        callbacks_(callbacks),
        record_(std::move(record)),
        cancel_upstream_(std::move(cancel_upstream)) {}

  // The upright original image's size (0 x 0: a file of unknown size, normalized boxes only).
  // Set before the upstream call starts.
  void SetImageSize(int width, int height) {
    width_ = width;
    height_ = height;
  }

  // Upstream results are processed one at a time, in order.
  void OnChunk(const gemini::GenerateContentResponse& chunk);
  // Ends the stream: the Summary and on_done, or the call's error.
  void OnDone(absl::Status status);
  // A step (OnChunk, OnDone) threw: fails the call.
  void OnStepFailed(const char* what);

 private:
  void ReportDone(absl::Status status);
  void CancelUpstream() { cancel_upstream_(); }
  void OnElement(std::string_view element);
  void Drop(telemetry::DropReason reason);
  // Segment: an object with a box but no usable mask (dropped, and counted by reason; the
  // reasons come from a fixed set, spatial_item.h).
  void WithoutMask(std::string why);
  template <typename Object>
  void FillNormalized(const SpatialItem& item, const NormBox& norm, Object& object);
  template <typename Object>
  void FillObject(const SpatialItem& item, const NormBox& norm, const PixelBox& box,
                  Object& object);
  // Box-sized binary mask from the model's PNG or polygon; false for a degenerate mask.
  bool FillMask(const SpatialItem& item, const PixelBox& box, v1::Mask& out);

  const SpatialParams& params_;
  TaskCallbacks<Response>& callbacks_;
  int width_ = 0;
  int height_ = 0;
  JsonArrayStreamParser parser_;
  int emitted_ = 0;
  int dropped_ = 0;
  int without_mask_ = 0;
  std::vector<std::pair<std::string, int>> mask_problems_;  // reason, count; in arrival order
  std::string finish_reason_;
  std::string model_version_;
  gemini::UsageMetadata usage_;
  bool cached_ = false;  // the answer came from the result cache (#21)
  std::string excerpt_;
  image::BinaryMask mask_;  // FillMask's, kept so that its storage is reused
  absl::Status failure_;
  bool done_reported_ = false;
  bool on_done_called_ = false;
  const std::shared_ptr<telemetry::CallRecord> record_;
  absl::AnyInvocable<void()> cancel_upstream_;
};

extern template class SpatialResults<v1::DetectResponse>;
extern template class SpatialResults<v1::SegmentResponse>;

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_SPATIAL_RESULTS_H_
