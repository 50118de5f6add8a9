// google.rpc error details carried inside absl::Status, so every layer can attach them
// (RetryInfo from Gemini's 429, ErrorInfo for unusable model output, ...) and server/ turns them
// into the grpc-status-details-bin trailer in one place. A detail is stored as a payload keyed by
// its type URL ("type.googleapis.com/google.rpc.RetryInfo") holding the serialized message.
#ifndef VISION_GATEWAY_SERVICE_COMMON_STATUS_DETAILS_H_
#define VISION_GATEWAY_SERVICE_COMMON_STATUS_DETAILS_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"

namespace vision_gateway {

inline constexpr char kTypeUrlPrefix[] = "type.googleapis.com/";

// Attaches `detail` (any google.rpc detail message) to a non-OK status.
void AddDetail(absl::Status& status, const google::protobuf::Message& detail);

// Reads back a detail of the message's type; false when absent.
bool GetDetail(const absl::Status& status, google::protobuf::Message& detail);

// A status with an ErrorInfo{reason, domain "vision-gateway", metadata} detail.
absl::Status WithErrorInfo(absl::Status status, std::string_view reason,
                           const std::map<std::string, std::string>& metadata = {});

// A status with a RetryInfo{retry_delay} detail.
absl::Status WithRetryInfo(absl::Status status, absl::Duration retry_delay);

// The RetryInfo delay of a status; nullopt when it carries none.
std::optional<absl::Duration> GetRetryDelay(const absl::Status& status);

// The outcome tag: which row of the error table (service/vision/error_table.h) a failure
// belongs to, set where the failure is best understood (the HTTP layer knows a TLS failure, the
// Gemini layer knows a 429). It travels as a private payload whose type URL does not start with
// kTypeUrlPrefix, so it never reaches a caller; the table turns it into the caller's code and
// ErrorInfo reason. The retry policy reads it too (gemini/retry_policy.h).
inline constexpr char kOutcomePayloadUrl[] = "vision-gateway.internal/outcome";
absl::Status WithOutcome(absl::Status status, std::string_view reason);
// Empty when the status carries no tag.
std::string GetOutcome(const absl::Status& status);

}  // namespace vision_gateway

#endif  // VISION_GATEWAY_SERVICE_COMMON_STATUS_DETAILS_H_
