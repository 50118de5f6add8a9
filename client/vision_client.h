// A small C++ client for vision.v1: opens a channel, builds requests from files, runs calls.
#ifndef VISION_GATEWAY_CLIENT_VISION_CLIENT_H_
#define VISION_GATEWAY_CLIENT_VISION_CLIENT_H_

#include <cstdint>
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
// with "files/" (as returned by Upload) or is a Gemini file URI.
absl::StatusOr<::vision::v1::Image> ImageFromPath(const std::string& path_or_file);

struct UploadOptions {
  std::string display_name;
  // Sent as a hint; the server sniffs the real type.
  std::string mime_type;
  // Hash the file first (one extra read of it) and send the SHA-256 in the header: the server
  // checks it and returns an identical existing file without uploading it again.
  bool send_sha256 = true;
  // Bytes per gRPC message.
  std::size_t chunk_bytes = 1 << 20;
  // Called after each message is written: (bytes sent so far, total).
  std::function<void(int64_t, int64_t)> on_progress;
};

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

  // Streams the file at `path` from disk in chunks (never all of it in memory) and returns the
  // File. If the server answers early (an identical file exists), sending stops there.
  absl::StatusOr<::vision::v1::File> UploadFile(const std::string& path,
                                                const UploadOptions& options);

  absl::StatusOr<::vision::v1::File> GetFile(const std::string& name);
  absl::StatusOr<::vision::v1::ListFilesResponse> ListFiles(int page_size,
                                                            const std::string& page_token);
  absl::Status DeleteFile(const std::string& name);

  // The models this caller may use (the server's allowlist of Gemini's current models).
  absl::StatusOr<::vision::v1::ListModelsResponse> ListModels();

 private:
  ClientOptions options_;
  std::unique_ptr<::vision::v1::VisionService::Stub> stub_;
};

}  // namespace vision_gateway::client

#endif  // VISION_GATEWAY_CLIENT_VISION_CLIENT_H_
