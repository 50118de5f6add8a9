// Where the result cache's Redis is: --result_cache_redis=HOST:PORT (#21).
#ifndef VISION_GATEWAY_SERVICE_REDIS_REDIS_ENDPOINT_H_
#define VISION_GATEWAY_SERVICE_REDIS_REDIS_ENDPOINT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vision_gateway::redis {

struct RedisEndpoint {
  std::string host;
  uint16_t port = 0;
};

// "HOST:PORT" (a host name, an IPv4 address, or an IPv6 address in brackets: "[::1]:6379"), port
// 1..65535. Anything else is INVALID_ARGUMENT naming what is wrong.
absl::StatusOr<RedisEndpoint> ParseRedisEndpoint(absl::string_view text);

}  // namespace vision_gateway::redis

#endif  // VISION_GATEWAY_SERVICE_REDIS_REDIS_ENDPOINT_H_
