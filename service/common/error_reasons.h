// The stable ErrorInfo reasons of the gateway (domain "vision-gateway"). Callers match on these
// strings, so they never change meaning; new ones may be added. The code each one maps to, and
// why, is the error table in service/vision/upstream_errors.cc (documented in
// proto/vision/v1/vision.proto and the README). Lower layers tag failures with them
// (WithOutcome, status_details.h); no layer below server/ builds a grpc::Status.
#ifndef VISION_GATEWAY_SERVICE_COMMON_ERROR_REASONS_H_
#define VISION_GATEWAY_SERVICE_COMMON_ERROR_REASONS_H_

namespace vision_gateway::reasons {

inline constexpr char kDomain[] = "vision-gateway";

// Gemini answered with an error.
inline constexpr char kUpstreamAuthFailed[] = "UPSTREAM_AUTH_FAILED";      // our key: 400 API_KEY_*, 401, 403
inline constexpr char kUpstreamInvalidArgument[] = "UPSTREAM_INVALID_ARGUMENT";  // 400
inline constexpr char kUpstreamFailedPrecondition[] = "UPSTREAM_FAILED_PRECONDITION";  // 400 FAILED_PRECONDITION
inline constexpr char kUpstreamNotFound[] = "UPSTREAM_NOT_FOUND";          // 404 (model, file)
inline constexpr char kUpstreamRateLimited[] = "UPSTREAM_RATE_LIMITED";    // 429
inline constexpr char kUpstreamInternal[] = "UPSTREAM_INTERNAL";           // 500
inline constexpr char kUpstreamUnavailable[] = "UPSTREAM_UNAVAILABLE";     // 502, 503, 408
inline constexpr char kUpstreamTimeout[] = "UPSTREAM_TIMEOUT";             // 504, an attempt timed out
inline constexpr char kUpstreamError[] = "UPSTREAM_ERROR";                 // any other error status
// Gemini could not be reached or its answer could not be read.
inline constexpr char kUpstreamUnreachable[] = "UPSTREAM_UNREACHABLE";     // resolve/connect failed, reset before any response byte
inline constexpr char kUpstreamConnectionLost[] = "UPSTREAM_CONNECTION_LOST";  // closed mid-response, stream ended early
inline constexpr char kUpstreamTls[] = "UPSTREAM_TLS";                     // handshake or certificate verification failed
inline constexpr char kUpstreamResponseTooLarge[] = "UPSTREAM_RESPONSE_TOO_LARGE";  // header/body over the cap
inline constexpr char kUpstreamBadResponse[] = "UPSTREAM_BAD_RESPONSE";    // malformed HTTP, JSON or SSE
// Gemini answered, but not with what was asked.
inline constexpr char kContentBlocked[] = "CONTENT_BLOCKED";               // promptFeedback.blockReason
inline constexpr char kModelOutputInvalid[] = "MODEL_OUTPUT_INVALID";      // no usable JSON array
inline constexpr char kModelNotFound[] = "MODEL_NOT_FOUND";                // not in Gemini's models list
inline constexpr char kModelOptionUnsupported[] = "MODEL_OPTION_UNSUPPORTED";  // no faithful translation
// The gateway's own outcomes.
inline constexpr char kInvalidRequest[] = "INVALID_REQUEST";               // the request is wrong
inline constexpr char kRequestTooLarge[] = "REQUEST_TOO_LARGE";            // over a documented size limit
inline constexpr char kDeadlineExceeded[] = "DEADLINE_EXCEEDED";           // the caller's deadline passed
inline constexpr char kUploadIdle[] = "UPLOAD_IDLE";                       // an Upload's caller sent nothing for too long
inline constexpr char kMaxCallDuration[] = "MAX_CALL_DURATION";           // a call without a deadline ran for --max_call_duration_s
inline constexpr char kCancelled[] = "CANCELLED";                          // the caller cancelled
inline constexpr char kCallerUnauthenticated[] = "CALLER_UNAUTHENTICATED";  // missing or wrong credentials
inline constexpr char kServerOverloaded[] = "SERVER_OVERLOADED";           // a global limit was hit
inline constexpr char kInternalError[] = "INTERNAL_ERROR";                 // a gateway bug or exhausted memory

}  // namespace vision_gateway::reasons

#endif  // VISION_GATEWAY_SERVICE_COMMON_ERROR_REASONS_H_
