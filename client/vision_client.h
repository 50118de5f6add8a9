// A small C++ client for vision.v1: opens a channel (plaintext, TLS or mTLS, with an optional
// bearer token), builds requests from files, runs calls. Errors keep the server's google.rpc
// details and request id (see RpcErrorOf).
#ifndef VISION_GATEWAY_CLIENT_VISION_CLIENT_H_
#define VISION_GATEWAY_CLIENT_VISION_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "vision/v1/vision.grpc.pb.h"

namespace vision_gateway::client {

struct TlsOptions {
  // PEM of the CA that signed the server's certificate; empty: the system's roots.
  std::string root_certs_pem;
  // Client certificate chain and key (PEM) for mTLS; both or neither.
  std::string cert_chain_pem;
  std::string private_key_pem;
};

struct ClientOptions {
  std::string target = "localhost:50051";
  // Per-call deadline; absl::InfiniteDuration(): none.
  absl::Duration timeout = absl::Seconds(120);
  int max_message_bytes = 64 * 1024 * 1024;
  // TLS (with these roots / client certificate); nullopt: plaintext.
  std::optional<TlsOptions> tls = std::nullopt;
  // Overrides the :authority (and, with TLS, the name the server's certificate must carry).
  std::string authority = "";
  // Sent as "authorization: Bearer <token>" on every call when not empty.
  std::string token = "";
};

// Reads a whole file (a PEM, a token); "-" is not special here.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// An Image for a command-line argument:
//   "-"                       the bytes read from stdin;
//   an existing local file    its bytes ("./files/x.jpg" and "files/x.jpg" when it exists);
//   "files/<id>" (no such local file) or a Gemini file URI: a reference to that Gemini file.
// Anything else is NOT_FOUND ("cannot open ...").
absl::StatusOr<::vision::v1::Image> ImageFromPath(const std::string& path_or_file);

// Payload URLs under which an RPC error's absl::Status carries what the server sent besides code
// and message: the serialized google.rpc.Status (grpc-status-details-bin) and x-request-id.
inline constexpr char kRpcStatusPayload[] = "type.googleapis.com/google.rpc.Status";
inline constexpr char kRequestIdPayload[] = "vision-gateway/x-request-id";

// What an RPC error carried, unpacked.
struct RpcError {
  // Empty when the server sent none.
  std::string request_id;
  std::optional<google::rpc::ErrorInfo> error_info;
  std::optional<google::rpc::RetryInfo> retry_info;
  std::optional<google::rpc::BadRequest> bad_request;
  std::optional<google::rpc::QuotaFailure> quota_failure;
  // True when the status came from a call (as opposed to a local failure such as a missing file).
  bool from_rpc = false;
};
RpcError RpcErrorOf(const absl::Status& status);

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
  // Fails only on inconsistent options (e.g. a client certificate without its key).
  static absl::StatusOr<std::unique_ptr<VisionClient>> Create(ClientOptions options);
  explicit VisionClient(ClientOptions options);

  // Streams the caption; on_message gets every message as it arrives, on_text each piece of text.
  // Returns the last message (usage, finish_reason, model_version) or the call's error.
  absl::StatusOr<::vision::v1::CaptionResponse> Caption(
      const ::vision::v1::CaptionRequest& request,
      const std::function<void(const std::string&)>& on_text,
      const std::function<void(const ::vision::v1::CaptionResponse&)>& on_message = nullptr);

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

  // ---- Batch jobs (#20) ----
  // Creates a job from `header` and one item per path (the path is the item's key; a "files/..."
  // name is sent as a file reference). Each image is read only when its item is sent.
  absl::StatusOr<::vision::v1::BatchJob> CreateBatch(const ::vision::v1::CreateBatchHeader& header,
                                                     const std::vector<std::string>& paths);
  absl::StatusOr<::vision::v1::BatchJob> GetBatch(const std::string& name);
  absl::StatusOr<::vision::v1::ListBatchesResponse> ListBatches(int page_size,
                                                                const std::string& page_token);
  absl::Status CancelBatch(const std::string& name);
  absl::Status DeleteBatch(const std::string& name);
  absl::Status ReadBatchResults(
      const std::string& name, const std::string& start_after_key,
      const std::function<void(const ::vision::v1::BatchResult&)>& on_message);

  // The models this caller may use (the server's allowlist of Gemini's current models).
  absl::StatusOr<::vision::v1::ListModelsResponse> ListModels();

  // grpc.health.v1.Health/Check for `service` ("" = the server as a whole).
  absl::StatusOr<::grpc::health::v1::HealthCheckResponse> Health(const std::string& service);

 private:
  std::unique_ptr<grpc::ClientContext> NewContext() const;

  ClientOptions options_;
  std::unique_ptr<::vision::v1::VisionService::Stub> stub_;
  std::unique_ptr<::grpc::health::v1::Health::Stub> health_;
};

}  // namespace vision_gateway::client

#endif  // VISION_GATEWAY_CLIENT_VISION_CLIENT_H_
