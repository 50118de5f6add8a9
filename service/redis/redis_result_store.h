// The result cache's shared store (#21): a ResultStore kept in Redis, so that every replica of the
// gateway answers from the same entries. The only folder that includes hiredis (as http/ is the
// only one with Beast and metrics/ the only one with prometheus-cpp); this header shows neither
// hiredis nor Boost.
//
// What the store promises:
// - Bounded: every command is answered within `command_timeout` (DEADLINE_EXCEEDED), a Redis that
//   is down or being reconnected to is answered at once (UNAVAILABLE), and beyond `max_in_flight`
//   commands (or `max_put_bytes_in_flight` bytes of values being written) a call fails at once with
//   RESOURCE_EXHAUSTED. Nothing queues without bound and no caller is ever blocked.
// - Resilient: a connection that drops, or whose command timed out (a stalled Redis), is closed and
//   reopened with exponential backoff (with jitter) between `min_reconnect_backoff` and
//   `max_reconnect_backoff`; the commands it carried fail UNAVAILABLE.
// - Wary of what Redis sends: a value longer than `max_value_bytes` fails the Get with
//   RESOURCE_EXHAUSTED and is never held whole in memory (a reply still arriving beyond the bound
//   closes the connection); a reply nobody asked for, or of a type GET/SET never answer with
//   (arrays), closes the connection.
// - Keys are namespaced: Redis sees `key_prefix + key`.
//
// Threads: Get/Put may be called from any thread and never block. Their done callbacks run on the
// store's own thread (one thread, running hiredis over an Asio io_context), never under a lock of
// the store; the fail-fast answers (not connected, too many in flight, a value too large to Put)
// run inline, before Get/Put returns, as ResultStore allows. done must not destroy the store.
// Destruction answers every pending command CANCELLED, then joins the thread.
#ifndef VISION_GATEWAY_SERVICE_REDIS_REDIS_RESULT_STORE_H_
#define VISION_GATEWAY_SERVICE_REDIS_REDIS_RESULT_STORE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "service/redis/redis_endpoint.h"
#include "service/result_cache/result_store.h"

namespace vision_gateway::redis {

struct RedisOptions {
  // Resolved (asynchronously, on the store's thread) at every connection attempt, so a Service's
  // address that changes is followed.
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  // Bound on each command, from Get/Put to its answer. A command that overruns it answers
  // DEADLINE_EXCEEDED and its connection is reopened (a reply that late means Redis is stalled).
  absl::Duration command_timeout = absl::Milliseconds(50);
  // Bound on resolving the host and opening the connection.
  absl::Duration connect_timeout = absl::Milliseconds(500);
  absl::Duration min_reconnect_backoff = absl::Milliseconds(50);
  absl::Duration max_reconnect_backoff = absl::Seconds(2);
  // Commands sent and not yet answered; beyond it Get/Put fail RESOURCE_EXHAUSTED at once.
  int max_in_flight = 256;
  // Bytes of values of unanswered Puts (what the store holds for Redis at most, besides keys).
  std::size_t max_put_bytes_in_flight = 64 << 20;
  // Largest value Put accepts and Get reads back.
  std::size_t max_value_bytes = 8 << 20;
  std::string key_prefix = "vg:rc:v1:";
};

// A store connected (and reconnecting) to options.host:options.port. It starts connecting at once
// and does not wait for the connection: until it is open, calls fail UNAVAILABLE. INVALID_ARGUMENT
// for options that cannot work (empty host, port 0, non-positive timeouts or bounds).
absl::StatusOr<std::unique_ptr<result_cache::ResultStore>> MakeRedisResultStore(
    const RedisOptions& options);

}  // namespace vision_gateway::redis

#endif  // VISION_GATEWAY_SERVICE_REDIS_REDIS_RESULT_STORE_H_
