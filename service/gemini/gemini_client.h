// The typed Gemini REST client that the vision layer depends on (and tests fake).
//
// Results arrive through callbacks on the HTTP layer's I/O threads; callbacks must not block.
// Errors are absl::Status with the upstream error envelope mapped (see error_envelope.h) and an
// outcome tag naming their row of the error table (service/common/error_reasons.h): transport
// failures as the HTTP layer tagged them, DEADLINE_EXCEEDED when the caller's deadline passed,
// CONTENT_BLOCKED (INVALID_ARGUMENT, ErrorInfo metadata block_reason) for a prompt Gemini refused,
// UPSTREAM_BAD_RESPONSE for a body that is not what the API promises, UPSTREAM_CONNECTION_LOST
// for a stream that ended without a finish reason. A Retry-After header becomes a RetryInfo.
#ifndef VISION_GATEWAY_SERVICE_GEMINI_GEMINI_CLIENT_H_
#define VISION_GATEWAY_SERVICE_GEMINI_GEMINI_CLIENT_H_

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/gemini/api_key.h"
#include "service/gemini/types.h"
#include "service/telemetry/call_record.h"

namespace vision_gateway::http {
class HttpClient;
}

namespace vision_gateway::gemini {

struct GeminiOptions {
  // Scheme, host and optional port; no trailing path. http:// only for loopback (emulator, tests).
  std::string base_url = "https://generativelanguage.googleapis.com";
  // API version path segment.
  std::string api_version = "v1beta";
  // Sent as x-goog-api-key; never logged nor put in errors. A fixed string or a source that can
  // change at run time (api_key_file.h); each upstream request reads it once, when it starts.
  ApiKey api_key;
  // Bound for a call whose caller gave no deadline (CallOptions::deadline infinite). A call with a
  // deadline is bounded by it alone, however far away it is.
  std::chrono::milliseconds default_timeout{120000};
};

struct CallOptions {
  absl::Time deadline = absl::InfiniteFuture();
  // The gRPC call this upstream call serves, if any: the instrumented client adds its attempts,
  // upstream time and tokens; the REST client forwards its W3C traceparent.
  std::shared_ptr<telemetry::CallRecord> record;
};

// A call in flight. Cancel() is thread-safe, idempotent and harmless after completion; the
// call's completion callback then runs with CANCELLED (if it had not run yet).
class PendingCall {
 public:
  virtual ~PendingCall() = default;
  virtual void Cancel() = 0;
};

struct StreamObserver {
  // Each streamed GenerateContentResponse (one SSE event), in order.
  absl::AnyInvocable<void(GenerateContentResponse)> on_chunk;
  // Exactly once, after the last on_chunk. OK only when the stream ended cleanly. An error object
  // sent mid-stream, a malformed event, or a body cut short all end the stream with an error.
  absl::AnyInvocable<void(absl::Status)> on_done;
};

class GeminiClient {
 public:
  virtual ~GeminiClient() = default;

  // POST {base}/{version}/models/{model}:streamGenerateContent?alt=sse
  virtual std::shared_ptr<PendingCall> StreamGenerateContent(const std::string& model,
                                                             GenerateContentRequest request,
                                                             CallOptions options,
                                                             StreamObserver observer) = 0;

  // POST {base}/{version}/models/{model}:generateContent
  virtual std::shared_ptr<PendingCall> GenerateContent(
      const std::string& model, GenerateContentRequest request, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<GenerateContentResponse>)> done) = 0;

  // POST {base}/{version}/models/{model}:countTokens
  virtual std::shared_ptr<PendingCall> CountTokens(
      const std::string& model, CountTokensRequest request, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<CountTokensResponse>)> done) = 0;

  // GET {base}/{version}/models?pageSize=N&pageToken=T (page_size 0: Gemini's default, 50; at
  // most 1000). One page of Gemini's models list.
  virtual std::shared_ptr<PendingCall> ListModels(
      int page_size, const std::string& page_token, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<ListModelsResponse>)> done) = 0;

  // --- Files API (gemini-wire.md §1.3, §4) ---
  //
  // Upload URLs are accepted only on the configured base_url's origin (scheme, host and port):
  // the API key is never sent anywhere else. A start reply whose x-goog-upload-url points
  // elsewhere is an INTERNAL error; so is an upload_url argument on another origin.
  // Upload-endpoint errors may be plain text; they map like JSON envelopes (error_envelope.h).

  // POST {base}/upload/{version}/files with X-Goog-Upload-Command: start.
  virtual std::shared_ptr<PendingCall> StartUpload(
      StartUploadRequest request, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<UploadSession>)> done) = 0;

  // POST <upload_url> with X-Goog-Upload-Command "upload" (or "upload, finalize") and
  // X-Goog-Upload-Offset. A non-final chunk's size must be a multiple of the session's
  // granularity. The reply's status is "active" (or "final" with the File).
  virtual std::shared_ptr<PendingCall> UploadChunk(
      const std::string& upload_url, int64_t offset, ChunkBytes bytes, bool finalize,
      CallOptions options, absl::AnyInvocable<void(absl::StatusOr<UploadStatus>)> done) = 0;

  // X-Goog-Upload-Command: query — how many bytes Gemini holds (size_received).
  virtual std::shared_ptr<PendingCall> QueryUpload(
      const std::string& upload_url, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<UploadStatus>)> done) = 0;

  // X-Goog-Upload-Command: cancel — drops the session and the bytes received.
  virtual std::shared_ptr<PendingCall> CancelUpload(
      const std::string& upload_url, CallOptions options,
      absl::AnyInvocable<void(absl::Status)> done) = 0;

  // GET {base}/{version}/files/{id}; `name` is "files/<id>".
  virtual std::shared_ptr<PendingCall> GetFile(
      const std::string& name, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<File>)> done) = 0;

  // GET {base}/{version}/files?pageSize=N&pageToken=T (page_size 0: Gemini's default).
  virtual std::shared_ptr<PendingCall> ListFiles(
      int page_size, const std::string& page_token, CallOptions options,
      absl::AnyInvocable<void(absl::StatusOr<ListFilesResponse>)> done) = 0;

  // DELETE {base}/{version}/files/{id}.
  virtual std::shared_ptr<PendingCall> DeleteFile(const std::string& name, CallOptions options,
                                                  absl::AnyInvocable<void(absl::Status)> done) = 0;
};

// "files/<id>" with a valid id (1..40 of lowercase letters, digits, '-'; not starting or ending
// with '-'): the id. Anything else: empty.
std::string FileIdOf(std::string_view name);

// The REST implementation over the HTTP client.
absl::StatusOr<std::unique_ptr<GeminiClient>> MakeGeminiClient(
    GeminiOptions options, std::shared_ptr<http::HttpClient> http);

}  // namespace vision_gateway::gemini

#endif  // VISION_GATEWAY_SERVICE_GEMINI_GEMINI_CLIENT_H_
