// Maps Gemini's error responses to absl::Status.
//
// Gemini reports errors as a google.rpc.Status in JSON: {"error": {"code": 429, "message": "...",
// "status": "RESOURCE_EXHAUSTED", "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
// "retryDelay": "15s"}, ...]}} (sometimes wrapped in a one-element array, sometimes plain text on
// upload endpoints). The status code comes from error.status when it names a canonical code, else
// from the HTTP status. The message is "Gemini: " + the upstream message, bounded; request content
// is never echoed. Known detail types (RetryInfo, QuotaFailure, ErrorInfo, BadRequest, Help,
// LocalizedMessage) are attached with AddDetail (service/common/status_details.h); entries of the
// same type are merged. Every such status carries an outcome tag (GetOutcome,
// service/common/status_details.h): UPSTREAM_AUTH_FAILED for 401, 403 or an ErrorInfo reason
// API_KEY_*, else by code (UPSTREAM_INVALID_ARGUMENT, _FAILED_PRECONDITION, _NOT_FOUND,
// _RATE_LIMITED, _INTERNAL, _UNAVAILABLE, _TIMEOUT for 504, UPSTREAM_ERROR otherwise).
#ifndef VISION_GATEWAY_SERVICE_GEMINI_ERROR_ENVELOPE_H_
#define VISION_GATEWAY_SERVICE_GEMINI_ERROR_ENVELOPE_H_

#include <cstddef>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace vision_gateway::gemini {

// Longest upstream message kept (bytes, cut at a UTF-8 boundary).
inline constexpr std::size_t kMaxErrorMessageBytes = 1024;
// Longest error body that is parsed as JSON; longer bodies are treated as opaque text.
inline constexpr std::size_t kMaxErrorBodyBytes = 64 * 1024;

// A non-OK status for an HTTP response with a non-2xx status (any body: JSON envelope, plain text,
// or empty). For a 2xx status with no error envelope the result is UNKNOWN.
absl::Status StatusFromHttpError(int http_status, std::string_view body);

// For text seen inside a 200 stream: the mapped status when `text` is an error object
// ({"error": {...}} or [{"error": {...}}]), OK when it is anything else.
absl::Status StatusFromErrorJson(std::string_view text);

// The canonical code for an HTTP status: 400 INVALID_ARGUMENT, 401 UNAUTHENTICATED,
// 403 PERMISSION_DENIED, 404 NOT_FOUND, 408 UNAVAILABLE, 409 ABORTED, 429 RESOURCE_EXHAUSTED,
// 499 CANCELLED, 500 INTERNAL, 501 UNIMPLEMENTED, 502/503 UNAVAILABLE, 504 DEADLINE_EXCEEDED,
// other 4xx FAILED_PRECONDITION, other 5xx INTERNAL, anything else UNKNOWN.
absl::StatusCode StatusCodeFromHttpStatus(int http_status);

// "INVALID_ARGUMENT" -> kInvalidArgument, ...; nullopt for "OK" and unknown names.
std::optional<absl::StatusCode> StatusCodeFromName(std::string_view name);

// A protobuf Duration in JSON form: decimal seconds with up to 9 fractional digits and an "s"
// suffix ("15s", "1.5s", "0.000000001s"). nullopt when malformed or negative.
std::optional<absl::Duration> ParseProtoDuration(std::string_view text);

}  // namespace vision_gateway::gemini

#endif  // VISION_GATEWAY_SERVICE_GEMINI_ERROR_ENVELOPE_H_
