// Decorators of the Gemini stubs that retry transient failures (the "connection" layer
// google-cloud-cpp puts between its client and its stub). Composed in main.cc above the
// instrumented stubs; the vision tasks see the stubs' interfaces only.
//
// Every call runs on the one retry loop (async_retry_loop.h: the policy, the idempotency rule,
// RetryInfo, the caller's deadline, --max_retry_delay_s, the budget), with RetryOptions'
// attempts, full-jitter backoff, attempt timeout and budget shared by all calls of both stubs:
//   generate stub  streamGenerateContent, generateContent  non-idempotent (Gemini bills them);
//                  a stream is retried only while nothing of it has reached the caller
//                  countTokens, models.list                idempotent
//   files stub     files.get, files.list, upload cancel     idempotent
//                  files.delete                             idempotent (a retry's 404: done)
//                  upload start                             non-idempotent (opens a session)
//                  upload chunk, upload query               passed through: the upload resumes
//                                                           itself on the same loop
// Cancel() stops a waiting or running attempt; the callback then runs with CANCELLED.
//
// Telemetry: each retry is counted with its backoff (Telemetry::UpstreamRetry, by operation),
// and the time the call really waited before a retry is added to its CallRecord
// (CallOptions::record, AddUpstreamWait), so that the gateway-overhead figure excludes backoff.
// Attempts themselves are recorded by the instrumented stubs underneath (one exchange each).
#ifndef VISION_GATEWAY_SERVICE_GEMINI_RETRYING_GEMINI_CLIENT_H_
#define VISION_GATEWAY_SERVICE_GEMINI_RETRYING_GEMINI_CLIENT_H_

#include <memory>

#include "service/common/timer.h"
#include "service/gemini/gemini_client.h"
#include "service/gemini/retry_policy.h"
#include "service/telemetry/telemetry.h"

namespace vision_gateway::gemini {

// `telemetry` outlives the returned stubs.
std::unique_ptr<GenerateStub> MakeRetryingGenerateStub(
    std::shared_ptr<GenerateStub> inner, RetryOptions options, std::shared_ptr<Timer> timer,
    telemetry::Telemetry& telemetry = telemetry::NoTelemetry());
std::unique_ptr<FilesStub> MakeRetryingFilesStub(
    std::shared_ptr<FilesStub> inner, RetryOptions options, std::shared_ptr<Timer> timer,
    telemetry::Telemetry& telemetry = telemetry::NoTelemetry());
// The Batch API (#20): batches get/list/cancel/delete idempotent (a delete's retry that finds
// the job gone: done); batchGenerateContent non-idempotent (a job Gemini bills); the responses
// download idempotent, retried only while none of it has reached the reader.
std::unique_ptr<BatchesStub> MakeRetryingBatchesStub(
    std::shared_ptr<BatchesStub> inner, RetryOptions options, std::shared_ptr<Timer> timer,
    telemetry::Telemetry& telemetry = telemetry::NoTelemetry());
// Every stub (batches when set), sharing one budget.
GeminiStubs MakeRetryingStubs(GeminiStubs inner, RetryOptions options,
                              std::shared_ptr<Timer> timer,
                              telemetry::Telemetry& telemetry = telemetry::NoTelemetry());

}  // namespace vision_gateway::gemini

#endif  // VISION_GATEWAY_SERVICE_GEMINI_RETRYING_GEMINI_CLIENT_H_
