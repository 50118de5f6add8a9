// A small C++ client for vision.v1: opens a channel, builds requests from files, runs calls.
#ifndef VISION_GATEWAY_CLIENT_VISION_CLIENT_H_
#define VISION_GATEWAY_CLIENT_VISION_CLIENT_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "vision/v1/vision.grpc.pb.h"

namespace vision_gateway::client {

struct ClientOptions {
  std::string target = "localhost:50051";
  // Per-call deadline.
  absl::Duration timeout = absl::Seconds(120);
  int max_message_bytes = 64 * 1024 * 1024;
};

// An Image carrying the bytes of a local file, or a file reference when `path_or_file` starts
// with "files/" (as returned by Upload).
absl::StatusOr<::vision::v1::Image> ImageFromPath(const std::string& path_or_file);

class VisionClient {
 public:
  explicit VisionClient(ClientOptions options);

  // Streams the caption; on_text gets each piece as it arrives. Returns the last message (usage,
  // finish_reason, model_version) or the call's error, with the server's message.
  absl::StatusOr<::vision::v1::CaptionResponse> Caption(
      const ::vision::v1::CaptionRequest& request,
      const std::function<void(const std::string&)>& on_text);

  // Streams Detect/Segment messages (ImageInfo, objects, Summary) to on_message as they arrive.
  absl::Status Detect(const ::vision::v1::DetectRequest& request,
                      const std::function<void(const ::vision::v1::DetectResponse&)>& on_message);
  absl::Status Segment(const ::vision::v1::SegmentRequest& request,
                       const std::function<void(const ::vision::v1::SegmentResponse&)>& on_message);

  absl::StatusOr<::vision::v1::CountTokensResponse> CountTokens(
      const ::vision::v1::CountTokensRequest& request);

 private:
  ClientOptions options_;
  std::unique_ptr<::vision::v1::VisionService::Stub> stub_;
};

}  // namespace vision_gateway::client

#endif  // VISION_GATEWAY_CLIENT_VISION_CLIENT_H_
