// Internal to service/http: the request target an absolute URL names (scheme, host, port, Host
// header, origin-form target, pool key), and the checks on request methods and header fields.
// No Boost types: Boost.URL parses in url_target.cc.
#ifndef VISION_GATEWAY_SERVICE_HTTP_URL_TARGET_H_
#define VISION_GATEWAY_SERVICE_HTTP_URL_TARGET_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace vision_gateway::http::internal {

struct Target {
  bool tls = false;
  std::string host;           // for resolve and certificate checks: no brackets, decoded
  bool host_is_name = false;  // a DNS name (SNI is sent only for names)
  std::uint16_t port = 0;
  std::string host_header;  // Host: value
  std::string target;       // origin-form request target: path?query
  std::string authority;    // host:port, for messages
  std::string pool_key;     // scheme://host:port
};

// Parses an absolute http(s) URL. INVALID_ARGUMENT for a malformed URL, another scheme, user
// info, an unusable host or port, a relative path, or http:// to a host that is not loopback
// (127.0.0.0/8, ::1, localhost). The error never echoes the URL (its query may hold a key).
absl::StatusOr<Target> ParseTarget(std::string_view url);

// An HTTP token (RFC 9110 5.6.2): a method or a header name.
bool IsToken(std::string_view s);
// A header value that cannot split the header block (no CR, LF or NUL).
bool IsValidHeaderValue(std::string_view s);
// Framing headers the client sets itself (Host, Content-Length, Transfer-Encoding, Connection).
bool IsReservedHeader(std::string_view name);

}  // namespace vision_gateway::http::internal

#endif  // VISION_GATEWAY_SERVICE_HTTP_URL_TARGET_H_
