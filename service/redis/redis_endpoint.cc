#include "service/redis/redis_endpoint.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace vision_gateway::redis {

absl::StatusOr<RedisEndpoint> ParseRedisEndpoint(absl::string_view text) {
  const auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("Redis address \"", text.substr(0, 256), "\": ", why, " (want HOST:PORT)"));
  };
  absl::string_view host;
  absl::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos) return invalid("unterminated '[' of an IPv6 address");
    host = text.substr(1, close - 1);
    absl::string_view rest = text.substr(close + 1);
    if (rest.empty() || rest.front() != ':') return invalid("no :PORT after the IPv6 address");
    port = rest.substr(1);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) return invalid("no :PORT");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != absl::string_view::npos) {
      return invalid("an IPv6 address must be in brackets, e.g. [::1]:6379");
    }
  }
  if (host.empty()) return invalid("empty host");
  if (host.size() > 253) return invalid("host longer than 253 characters");
  for (char c : host) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_' &&
        c != ':') {
      return invalid("the host has a character that no host name or address has");
    }
  }
  uint32_t number = 0;
  if (port.empty() || !std::all_of(port.begin(), port.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(port, &number) || number < 1 || number > 65535) {
    return invalid("the port is not a number in 1..65535");
  }
  return RedisEndpoint{.host = std::string(host), .port = static_cast<uint16_t>(number)};
}

}  // namespace vision_gateway::redis
