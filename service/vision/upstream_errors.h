// The error table: every upstream and local outcome → one gRPC code (as absl::StatusCode) and
// google.rpc details for the caller. Documented in proto/vision/v1/vision.proto and the README;
// the reasons are in service/common/error_reasons.h.
//
// Each failure reaches the table tagged with its outcome (WithOutcome) by the layer that
// understood it, or carrying a vision-gateway ErrorInfo already (MODEL_OUTPUT_INVALID,
// CONTENT_BLOCKED, SERVER_OVERLOADED...). Untagged statuses get a reason from their code
// (INVALID_ARGUMENT → INVALID_REQUEST, DEADLINE_EXCEEDED, CANCELLED, RESOURCE_EXHAUSTED →
// SERVER_OVERLOADED, UNAVAILABLE → UPSTREAM_UNAVAILABLE, INTERNAL/UNKNOWN/DATA_LOSS →
// INTERNAL_ERROR; any other code keeps its code and takes its name as the reason).
#ifndef VISION_GATEWAY_SERVICE_VISION_UPSTREAM_ERRORS_H_
#define VISION_GATEWAY_SERVICE_VISION_UPSTREAM_ERRORS_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace vision_gateway::vision {

struct ErrorTableRow {
  std::string_view reason;
  absl::StatusCode code;
  // The caller's message when the outcome's own text must not reach them (host names, TLS
  // details, credentials): it says what went wrong and what to do. Empty: the status's own
  // message (bounded upstream text "Gemini: ...", or the gateway's own validation message).
  std::string_view message;
};

// Every row, in the order documented in the proto.
absl::Span<const ErrorTableRow> ErrorTable();

// The caller's view of `status`: the table's code, the row's message (the original is logged
// once when it is replaced), an ErrorInfo{reason, domain "vision-gateway", metadata}, and the
// upstream's RetryInfo, QuotaFailure, BadRequest, Help and LocalizedMessage details. Gemini's own
// ErrorInfo is not passed on; its reason goes into metadata "upstream_reason", and its metadata
// about the quota or model (keys quota_*, model, location, method) is kept. Idempotent.
absl::Status ToCallerStatus(absl::Status status);

// As ToCallerStatus, but logs nothing: when the row's message replaces the status's own, the
// original ("REASON: message") is put in `*hidden` (else it is cleared), for a caller that
// reports many of them at once (a batch's per-item failures: one summary line per read).
absl::Status ToCallerStatusUnlogged(absl::Status status, std::string* hidden);

}  // namespace vision_gateway::vision

#endif  // VISION_GATEWAY_SERVICE_VISION_UPSTREAM_ERRORS_H_
