// The stub of Gemini's models resource (gemini-wire.md §1.1, §1.2): generate, stream, count
// tokens, list the models. One stub per Gemini service, google-cloud-cpp style (files_stub.h for
// the Files API; a batches stub would sit beside them): the REST client implements it, and each
// decorator (instrumented_gemini_client.h, retrying_gemini_client.h) wraps only the stubs whose
// calls it changes.
//
// Results arrive through callbacks on the HTTP layer's I/O threads; callbacks must not block.
// Errors are absl::Status with the upstream error envelope mapped (see error_envelope.h) and an
// outcome tag naming their row of the error table (service/common/error_reasons.h): transport
// failures as the HTTP layer tagged them, DEADLINE_EXCEEDED when the caller's deadline passed,
// CONTENT_BLOCKED (INVALID_ARGUMENT, ErrorInfo metadata block_reason) for a prompt Gemini refused,
// UPSTREAM_BAD_RESPONSE for a body that is not what the API promises, UPSTREAM_CONNECTION_LOST
// for a stream that ended without a finish reason. A Retry-After header becomes a RetryInfo.
#ifndef VISION_GATEWAY_SERVICE_GEMINI_GENERATE_STUB_H_
#define VISION_GATEWAY_SERVICE_GEMINI_GENERATE_STUB_H_

#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "service/gemini/pending_call.h"
#include "service/gemini/types.h"

namespace vision_gateway::gemini {

struct StreamObserver {
  // Each streamed GenerateContentResponse (one SSE event), in order.
  absl::AnyInvocable<void(GenerateContentResponse)> on_chunk;
  // Exactly once, after the last on_chunk. OK only when the stream ended cleanly. An error object
  // sent mid-stream, a malformed event, or a body cut short all end the stream with an error.
  absl::AnyInvocable<void(absl::Status)> on_done;
};

class GenerateStub {
 public:
  virtual ~GenerateStub() = default;

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
};

}  // namespace vision_gateway::gemini

#endif  // VISION_GATEWAY_SERVICE_GEMINI_GENERATE_STUB_H_
