// A GeminiClient decorator that retries transient failures (the "connection" layer
// google-cloud-cpp puts between its client and its stub). Composed in main.cc around the REST
// client; the vision tasks see one GeminiClient.
//
// Policy (retry_policy.h): a failure is retried when IsTransient() says so, the call has attempts
// left (RetryOptions::max_attempts), the retry budget allows it, and the wait fits the caller's
// deadline. The wait is full-jitter exponential backoff, never shorter than the delay Gemini
// asked for (RetryInfo.retryDelay / Retry-After). When Gemini asks for a delay longer than the
// deadline leaves, the call fails at once with RESOURCE_EXHAUSTED + RetryInfo (the caller
// decides). A stream is retried only while nothing of it has reached the caller: once the first
// event was delivered, its failure is final. Cancel() stops a waiting or running attempt; the
// callback then runs with CANCELLED. Requests are kept (copied per attempt) for re-sending.
//
// Telemetry: each retry is counted with its backoff (Telemetry::UpstreamRetry, by operation:
// streamGenerateContent, generateContent, countTokens), and the time the call really waited
// before a retry is added to its CallRecord (CallOptions::record, AddUpstreamWait), so that the
// gateway-overhead figure excludes backoff. Attempts themselves are recorded by the
// instrumented client underneath (one exchange each).
#ifndef VISION_GATEWAY_SERVICE_GEMINI_RETRYING_GEMINI_CLIENT_H_
#define VISION_GATEWAY_SERVICE_GEMINI_RETRYING_GEMINI_CLIENT_H_

#include <memory>

#include "service/common/timer.h"
#include "service/gemini/gemini_client.h"
#include "service/gemini/retry_policy.h"
#include "service/telemetry/telemetry.h"

namespace vision_gateway::gemini {

// `telemetry` outlives the returned client.
std::unique_ptr<GeminiClient> MakeRetryingGeminiClient(
    std::shared_ptr<GeminiClient> inner, RetryOptions options, std::shared_ptr<Timer> timer,
    telemetry::Telemetry& telemetry = telemetry::NoTelemetry());

}  // namespace vision_gateway::gemini

#endif  // VISION_GATEWAY_SERVICE_GEMINI_RETRYING_GEMINI_CLIENT_H_
