// Where the result cache (#21) keeps its entries: in this process (an LRU bounded by
// --result_cache_mb) or in Redis shared by every replica (--result_cache_redis, service/redis/).
// Keys and values are opaque bytes to a store; the caching stub (a decorator of the generate
// stub) builds the keys from the exact upstream request and the caller's scope, and the values
// from the recorded response events.
#ifndef VISION_GATEWAY_SERVICE_RESULT_CACHE_RESULT_STORE_H_
#define VISION_GATEWAY_SERVICE_RESULT_CACHE_RESULT_STORE_H_

#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace vision_gateway::result_cache {

class ResultStore {
 public:
  virtual ~ResultStore() = default;

  // The value stored under `key`: done(value) on a hit, done(NotFoundError) on a miss, any other
  // status when the store failed (a caller then goes upstream as on a miss). done runs exactly
  // once, possibly inline, on any thread, and must not block. A store answers within its own
  // bound (a Redis that is slow or down answers UNAVAILABLE or DEADLINE_EXCEEDED quickly), so a
  // lookup never holds a call up for long.
  virtual void Get(std::string key, absl::AnyInvocable<void(absl::StatusOr<std::string>)> done) = 0;

  // Stores `value` under `key` for `ttl` (InfiniteDuration: until evicted). done runs exactly once,
  // as for Get; a store that cannot keep the value reports why and loses nothing else.
  virtual void Put(std::string key, std::string value, absl::Duration ttl,
                   absl::AnyInvocable<void(absl::Status)> done) = 0;
};

}  // namespace vision_gateway::result_cache

#endif  // VISION_GATEWAY_SERVICE_RESULT_CACHE_RESULT_STORE_H_
