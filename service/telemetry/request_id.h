// Request ids and W3C trace context: what the server accepts from a caller, and what it makes up.
#ifndef VISION_GATEWAY_SERVICE_TELEMETRY_REQUEST_ID_H_
#define VISION_GATEWAY_SERVICE_TELEMETRY_REQUEST_ID_H_

#include <string>
#include <string_view>

namespace vision_gateway::telemetry {

inline constexpr char kRequestIdHeader[] = "x-request-id";
inline constexpr char kTraceparentHeader[] = "traceparent";
inline constexpr std::size_t kMaxRequestIdBytes = 128;

// A caller's x-request-id is kept when it is 1..128 characters of [A-Za-z0-9._:/+=-] (UUIDs,
// ULIDs, base64 ids, "svc/123"); anything else (spaces, control bytes, quotes, too long) is
// replaced by a generated id so that logs stay parseable.
bool IsValidRequestId(std::string_view id);

// 32 random lowercase hex digits.
std::string GenerateRequestId();

// A W3C traceparent of version 00 ("00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>",
// lowercase, ids not all zero), or of a later version that begins with that shape (the spec asks
// to parse the known prefix). Only valid values are logged and forwarded.
bool IsValidTraceparent(std::string_view traceparent);

}  // namespace vision_gateway::telemetry

#endif  // VISION_GATEWAY_SERVICE_TELEMETRY_REQUEST_ID_H_
