// google.rpc error details carried inside absl::Status, so every layer can attach them
// (RetryInfo from Gemini's 429, ErrorInfo for unusable model output, ...) and server/ turns them
// into the grpc-status-details-bin trailer in one place. A detail is stored as a payload keyed by
// its type URL ("type.googleapis.com/google.rpc.RetryInfo") holding the serialized message.
#ifndef VISION_GATEWAY_SERVICE_COMMON_STATUS_DETAILS_H_
#define VISION_GATEWAY_SERVICE_COMMON_STATUS_DETAILS_H_

#include <map>
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

}  // namespace vision_gateway

#endif  // VISION_GATEWAY_SERVICE_COMMON_STATUS_DETAILS_H_
