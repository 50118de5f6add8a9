#include "service/server/vision_service.h"

#include <chrono>
#include <utility>

#include "service/server/reactors.h"
#include "service/vision/caption_task.h"
#include "service/vision/spatial_task.h"

namespace vision_gateway::server {

namespace v1 = ::vision::v1;

absl::Time CallDeadline(const grpc::CallbackServerContext* context) {
  const auto deadline = context->deadline();
  // No deadline shows up as a time point decades away.
  if (deadline >= std::chrono::system_clock::now() + std::chrono::hours(24 * 365)) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

// The request message is allocated by gRPC for this call alone and nothing reads it after the
// handler returns, so its image bytes are moved into the task (and from there base64-encoded
// straight into the upstream body) instead of being copied.
template <typename Request>
Request TakeRequest(const Request* request) {
  return std::move(*const_cast<Request*>(request));
}

VisionServiceImpl::VisionServiceImpl(std::shared_ptr<gemini::GeminiClient> gemini,
                                     vision::VisionOptions options, int cpu_threads)
    : gemini_(std::move(gemini)), options_(std::move(options)), cpu_(cpu_threads) {}

grpc::ServerWriteReactor<v1::CaptionResponse>* VisionServiceImpl::Caption(
    grpc::CallbackServerContext* context, const v1::CaptionRequest* request) {
  return new StreamReactor<v1::CaptionResponse>(
      [&](vision::TaskCallbacks<v1::CaptionResponse> callbacks) {
        return vision::StartCaption(*gemini_, options_, TakeRequest(request),
                                    CallDeadline(context), std::move(callbacks));
      });
}

grpc::ServerWriteReactor<v1::DetectResponse>* VisionServiceImpl::Detect(
    grpc::CallbackServerContext* context, const v1::DetectRequest* request) {
  return new StreamReactor<v1::DetectResponse>(
      [&](vision::TaskCallbacks<v1::DetectResponse> callbacks) {
        return vision::StartDetect(*gemini_, cpu_, options_, TakeRequest(request),
                                   CallDeadline(context), std::move(callbacks));
      });
}

grpc::ServerWriteReactor<v1::SegmentResponse>* VisionServiceImpl::Segment(
    grpc::CallbackServerContext* context, const v1::SegmentRequest* request) {
  return new StreamReactor<v1::SegmentResponse>(
      [&](vision::TaskCallbacks<v1::SegmentResponse> callbacks) {
        return vision::StartSegment(*gemini_, cpu_, options_, TakeRequest(request),
                                    CallDeadline(context), std::move(callbacks));
      });
}

grpc::ServerUnaryReactor* VisionServiceImpl::CountTokens(grpc::CallbackServerContext* context,
                                                         const v1::CountTokensRequest* request,
                                                         v1::CountTokensResponse* response) {
  return new UnaryReactor<v1::CountTokensResponse>(
      response, [&](UnaryReactor<v1::CountTokensResponse>::Done done) {
        return vision::StartCountTokens(*gemini_, options_, TakeRequest(request),
                                        CallDeadline(context), std::move(done));
      });
}

}  // namespace vision_gateway::server
