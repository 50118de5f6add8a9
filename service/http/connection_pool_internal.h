// Internal to service/http (includes Beast/Asio; never include it outside service/http): one
// upstream connection, and the keep-alive pool that holds them with the per-host limits.
#ifndef VISION_GATEWAY_SERVICE_HTTP_CONNECTION_POOL_INTERNAL_H_
#define VISION_GATEWAY_SERVICE_HTTP_CONNECTION_POOL_INTERNAL_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "service/http/http_client.h"

namespace vision_gateway::http::internal {

using Clock = std::chrono::steady_clock;

// Socket read buffer of a connection while it reads a response head (a Gemini head is ~0.6 KiB;
// Beast reads at least 512 bytes at a time). Most of an open stream's life can be spent waiting
// for the head, so this is what each such stream holds.
inline constexpr std::size_t kHeadBufferBytes = 1024;
// Socket read buffer while a response body is read: Beast reads max(512, free capacity) bytes at
// a time, so without this room every read of a streamed body would be a 512-byte recv.
inline constexpr std::size_t kReadBufferBytes = 16 * 1024;

// One connection to an upstream host:port, plain or TLS. It carries no executor affinity:
// whichever call holds it binds its handlers to its own strand, and no timer: the call that holds
// it bounds each phase with its own (http_exchange.cc). A plain socket, not a Beast tcp_stream
// (whose per-connection state holds three timers and re-arms one around every read and write).
struct Connection {
  // With `tls_context`, a TLS stream over the socket (the handshake is the caller's); else plain.
  Connection(const boost::asio::any_io_executor& ex, boost::asio::ssl::context* tls_context,
             std::string pool_key);

  boost::asio::ip::tcp::socket& lowest() { return tls ? tls->next_layer() : *plain; }

  // Closes the socket; pending operations complete with an error. The object stays valid.
  void Close();

  // An idle connection is usable when nothing arrived on it: no data, no EOF, no error.
  bool LooksIdle();

  // Gives back the read buffer's memory (an idle connection needs none). Only when it is empty.
  void ReleaseBuffer();

  std::string key;
  std::optional<boost::asio::ip::tcp::socket> plain;
  // By pointer: a TLS stream is ~370 bytes that a plain connection would carry unused.
  std::unique_ptr<boost::asio::ssl::stream<boost::asio::ip::tcp::socket>> tls;
  boost::beast::flat_buffer buffer;
  Clock::time_point idle_since;
};

// Hands a freed connection slot to a waiting call: a kept-alive connection to reuse, or null
// (the call may open a new connection, already counted for it). Called outside the pool's lock;
// it only posts to the waiting call's strand.
using Grant = absl::AnyInvocable<void(std::unique_ptr<Connection>)>;

// Keep-alive connections per host:port, and the per-host connection limit. Every connection open
// to a host (idle here, in use by a call, or being opened) holds one of its slots; a call that
// finds none free waits in the host's FIFO queue until one is released or handed over.
// Thread-safe.
class ConnectionPool {
 public:
  // Reads max_connections_per_host, max_waiting_requests_per_host,
  // max_idle_connections_per_host (capped by the former) and idle_timeout.
  explicit ConnectionPool(const HttpClientOptions& options);
  ~ConnectionPool();

  enum class Result {
    kReuse,      // `conn` is a live idle connection, now the caller's (its slot with it)
    kOpen,       // a slot is reserved: the caller opens a new connection
    kQueued,     // every slot is busy: `grant` runs when one is free
    kQueueFull,  // every slot is busy and max_waiting_requests_per_host calls already wait
  };
  struct Acquired {
    Result result;
    std::unique_ptr<Connection> conn;
  };

  // The most recently used live idle connection to `key`, else a slot for a new one, else a place
  // in the queue (`waiter` identifies it for CancelWait).
  Acquired Acquire(const std::string& key, std::uint64_t waiter, Grant grant);

  // Leaves the queue. False when the waiter is no longer in it: a slot was granted to it and its
  // grant is on the way (the waiter must then give that slot back).
  bool CancelWait(const std::string& key, std::uint64_t waiter);

  // A slot of `key` is free: its connection was closed (or never opened). The oldest waiter, if
  // any, gets it to open a new connection.
  void Release(const std::string& key);

  // Closes every idle connection.
  void Clear();

  // What the pool holds for `key` now (for tests and diagnostics).
  struct HostCounts {
    std::size_t open = 0;     // slots held: idle + in use + being opened
    std::size_t idle = 0;     // kept-alive connections in the pool
    std::size_t waiting = 0;  // calls queued for a slot
  };
  HostCounts Counts(const std::string& key);

  // Takes back a connection whose last response was read completely and allowed keep-alive: the
  // oldest waiter gets it, else it is kept idle (or closed when max_idle_per_host is reached).
  void Put(std::unique_ptr<Connection> conn);

 private:
  struct Host {
    std::deque<std::unique_ptr<Connection>> idle;  // oldest first
    std::size_t open = 0;                          // slots held: idle + in use + being opened
    std::deque<std::pair<std::uint64_t, Grant>> waiters;  // oldest first
  };

  void EraseIfUnused(std::map<std::string, Host>::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::size_t max_per_host_;
  const std::size_t max_waiting_per_host_;
  const std::size_t max_idle_per_host_;
  const std::chrono::milliseconds idle_timeout_;
  absl::Mutex mu_;
  std::map<std::string, Host> hosts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vision_gateway::http::internal

#endif  // VISION_GATEWAY_SERVICE_HTTP_CONNECTION_POOL_INTERNAL_H_
