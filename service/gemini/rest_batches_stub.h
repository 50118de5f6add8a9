// The REST implementation of BatchesStub (batches_stub.h) over the HTTP client: one HTTP exchange
// per call, no retries (retrying_gemini_client.h's job). URLs, the API key header (never logged
// nor put in errors), the caller's deadline and the error table as in the REST GeminiClient
// (rest_gemini_client.cc); JSON through batch_codec.h.
//
// DownloadFile streams the file's bytes as they arrive, paced by the reader (http::StreamHandler::
// on_paced_body): pieces of at most 64 KiB, split anywhere, never a line-aligned unit. Splitting
// lines is the consumer's job, and it must bound a line (kMaxBatchResponseLineBytes, 16 MiB). A
// non-2xx answer is read whole (bounded by kMaxErrorBodyBytes) and mapped through the error table;
// no on_data runs then. The CallOptions deadline bounds the whole download, the reader's pauses
// included (without one: GeminiOptions::default_timeout).
#ifndef VISION_GATEWAY_SERVICE_GEMINI_REST_BATCHES_STUB_H_
#define VISION_GATEWAY_SERVICE_GEMINI_REST_BATCHES_STUB_H_

#include <memory>

#include "absl/status/statusor.h"
#include "service/gemini/batches_stub.h"
#include "service/gemini/gemini_client.h"

namespace vision_gateway::http {
class HttpClient;
}

namespace vision_gateway::gemini {

// The options are validated as MakeGeminiClient validates them.
absl::StatusOr<std::unique_ptr<BatchesStub>> MakeRestBatchesStub(
    GeminiOptions options, std::shared_ptr<http::HttpClient> http);

}  // namespace vision_gateway::gemini

#endif  // VISION_GATEWAY_SERVICE_GEMINI_REST_BATCHES_STUB_H_
