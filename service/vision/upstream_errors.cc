#include "service/vision/upstream_errors.h"

#include <map>
#include <string>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "google/rpc/error_details.pb.h"
#include "service/common/error_reasons.h"
#include "service/common/log.h"
#include "service/common/status_details.h"

namespace vision_gateway::vision {
namespace {

using absl::StatusCode;
namespace r = reasons;

// The table. Why some codes are what they are:
// - 500 → UNAVAILABLE: Gemini documents its 500 as a transient server-side failure to retry, the
//   gateway has already retried it, and UNAVAILABLE is the code gRPC clients and retry policies
//   treat as "try again"; INTERNAL would tell the caller an invariant broke and not to retry.
// - 504, and an attempt or default timeout while the caller's deadline had time left →
//   UNAVAILABLE (UPSTREAM_TIMEOUT): DEADLINE_EXCEEDED means the caller's own deadline passed and
//   invites a longer one, which is wrong when Gemini gave up first. When the caller's deadline
//   did pass, the outcome is DEADLINE_EXCEEDED.
// - Transport failures (unreachable, connection lost, TLS, oversized or malformed answers) →
//   UNAVAILABLE: the request was fine and the fault is between the gateway and Gemini; TLS is an
//   operator problem (CA bundle, interception proxy), never FAILED_PRECONDITION on the caller's
//   request, and an oversized upstream body is not the caller's quota (not RESOURCE_EXHAUSTED).
// - Our key rejected → INTERNAL: the caller's request was fine; the operator must fix the key.
constexpr ErrorTableRow kTable[] = {
    // Gemini answered with an error.
    {r::kUpstreamInvalidArgument, StatusCode::kInvalidArgument, ""},
    {r::kUpstreamFailedPrecondition, StatusCode::kFailedPrecondition, ""},
    {r::kUpstreamAuthFailed, StatusCode::kInternal,
     "Gemini rejected the gateway's credentials; the operator must check the server's API key"},
    {r::kUpstreamNotFound, StatusCode::kNotFound, ""},
    {r::kUpstreamRateLimited, StatusCode::kResourceExhausted, ""},
    {r::kUpstreamInternal, StatusCode::kUnavailable, ""},
    {r::kUpstreamUnavailable, StatusCode::kUnavailable, ""},
    {r::kUpstreamTimeout, StatusCode::kUnavailable,
     "Gemini did not answer in time; retry, possibly with a longer deadline"},
    {r::kUpstreamError, StatusCode::kInternal, ""},
    // Gemini could not be reached, or its answer could not be read.
    {r::kUpstreamUnreachable, StatusCode::kUnavailable,
     "cannot reach Gemini (connection refused or reset before an answer); retry later"},
    {r::kUpstreamConnectionLost, StatusCode::kUnavailable,
     "the connection to Gemini broke before its answer was complete; retry"},
    {r::kUpstreamTls, StatusCode::kUnavailable,
     "cannot establish a trusted TLS connection to Gemini; the operator must check the "
     "gateway's CA bundle (--gemini_ca_file) and network path"},
    {r::kUpstreamResponseTooLarge, StatusCode::kUnavailable,
     "Gemini's answer exceeded the gateway's response size limit; ask for fewer objects or "
     "retry"},
    {r::kUpstreamBadResponse, StatusCode::kUnavailable,
     "Gemini's answer was malformed (not the JSON or event stream the API defines); retry"},
    // Gemini answered, but not with what was asked.
    {r::kContentBlocked, StatusCode::kInvalidArgument, ""},
    {r::kModelOutputInvalid, StatusCode::kInternal, ""},
    // The gateway's own outcomes.
    {r::kInvalidRequest, StatusCode::kInvalidArgument, ""},
    {r::kRequestTooLarge, StatusCode::kInvalidArgument, ""},
    {r::kDeadlineExceeded, StatusCode::kDeadlineExceeded,
     "the call's deadline passed before Gemini finished; retry with a longer deadline"},
    {r::kCancelled, StatusCode::kCancelled, ""},
    {r::kServerOverloaded, StatusCode::kResourceExhausted, ""},
    {r::kInternalError, StatusCode::kInternal, ""},
};

const ErrorTableRow* FindRow(std::string_view reason) {
  for (const ErrorTableRow& row : kTable) {
    if (row.reason == reason) return &row;
  }
  return nullptr;
}

std::string DefaultReason(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument: return r::kInvalidRequest;
    case StatusCode::kDeadlineExceeded: return r::kDeadlineExceeded;
    case StatusCode::kCancelled: return r::kCancelled;
    case StatusCode::kResourceExhausted: return r::kServerOverloaded;
    case StatusCode::kUnavailable: return r::kUpstreamUnavailable;
    case StatusCode::kInternal:
    case StatusCode::kUnknown:
    case StatusCode::kDataLoss: return r::kInternalError;
    default: return absl::StatusCodeToString(code);
  }
}

// Details of these types pass from the upstream status to the caller.
constexpr const char* kPassedDetails[] = {
    "google.rpc.RetryInfo", "google.rpc.QuotaFailure", "google.rpc.BadRequest",
    "google.rpc.Help",      "google.rpc.LocalizedMessage",
};

}  // namespace

absl::Span<const ErrorTableRow> ErrorTable() { return kTable; }

absl::Status ToCallerStatus(absl::Status status) {
  std::string hidden;
  absl::Status out = ToCallerStatusUnlogged(std::move(status), &hidden);
  // The operator's view: what the caller's fixed message hides (host, TLS text...). The API key
  // never appears here: the HTTP layer never prints header values and the Gemini layer redacts
  // the key from upstream text.
  if (!hidden.empty()) LogWarning("upstream failure %s", hidden);
  return out;
}

absl::Status ToCallerStatusUnlogged(absl::Status status, std::string* hidden) {
  if (hidden != nullptr) hidden->clear();
  if (status.ok()) return status;
  google::rpc::ErrorInfo info;
  const bool has_info = GetDetail(status, info);
  std::map<std::string, std::string> metadata;
  std::string reason;
  if (has_info && info.domain() == r::kDomain) {
    reason = info.reason();
    metadata.insert(info.metadata().begin(), info.metadata().end());
  } else {
    reason = GetOutcome(status);
    if (reason.empty()) reason = DefaultReason(status.code());
    if (has_info && !info.reason().empty()) metadata["upstream_reason"] = info.reason().substr(0, 64);
    // What Gemini says about the quota or model involved (never "service" or "consumer": they
    // name Google's host and the project). Values are filtered once more by server/leak_filter.
    if (has_info) {
      for (const auto& [key, value] : info.metadata()) {
        if (key == "model" || key == "location" || key == "method" || key.starts_with("quota_")) {
          metadata[key.substr(0, 64)] = value.substr(0, 256);
        }
      }
    }
  }
  const ErrorTableRow* row = FindRow(reason);
  const StatusCode code = row != nullptr ? row->code : status.code();
  std::string message(status.message());
  if (row != nullptr && !row->message.empty()) {
    message = std::string(row->message);
    if (message != status.message() && hidden != nullptr) {
      *hidden = absl::StrCat(reason, ": ", status.message());
    }
  }
  absl::Status out(code, message);
  const bool pass_details = reason != r::kUpstreamAuthFailed;
  if (pass_details) {
    for (const char* type : kPassedDetails) {
      const std::string url = absl::StrCat(kTypeUrlPrefix, type);
      if (auto payload = status.GetPayload(url)) out.SetPayload(url, *payload);
    }
  }
  return WithErrorInfo(std::move(out), reason, metadata);
}

}  // namespace vision_gateway::vision
