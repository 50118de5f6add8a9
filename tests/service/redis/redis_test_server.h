// Test servers for the Redis result store: a real redis-server (Debian's /usr/bin/redis-server)
// and a scripted fake that speaks just enough RESP to misbehave on purpose.
//
// Ports: redis-server cannot listen on port 0 and report the port it got, so RedisServer asks the
// kernel for a free loopback port (bind to port 0, read it, close) and passes it; if another
// process takes the port in between, redis-server exits and Start tries a new port (a handful of
// times). A restart reuses the same port (the point of the restart test). The fake listens on
// port 0 itself.
#ifndef VISION_GATEWAY_TESTS_SERVICE_REDIS_REDIS_TEST_SERVER_H_
#define VISION_GATEWAY_TESTS_SERVICE_REDIS_REDIS_TEST_SERVER_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vision_gateway::testing {

class RedisServer {
 public:
  RedisServer();
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Starts redis-server on a free port and waits (bounded) until it answers PING.
  absl::Status Start();
  // SIGKILL, as a crash: no goodbye on the connections.
  void Kill();
  // Starts it again on the same port.
  absl::Status Restart();

  uint16_t port() const { return port_; }

  // One command over a fresh connection; the reply as RESP text without the final CRLF, e.g.
  // ":-1" for PTTL of a key without expiry.
  absl::StatusOr<std::string> Command(const std::vector<std::string>& args) const;

 private:
  absl::Status Launch();

  std::string dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

// A TCP listener on 127.0.0.1:0 that reads RESP commands and writes, for the n-th command of a
// connection (0: the store's PING), whatever `answer(n, args)` returns (empty: nothing, ever).
// Connections are served one at a time, each until the peer closes it.
class FakeRedis {
 public:
  using Answer = std::function<std::string(int n, const std::vector<std::string>& args)>;
  // An answer that resets the connection (RST: SO_LINGER 0, then close) instead of replying.
  static constexpr char kReset[] = "<reset the connection>";
  explicit FakeRedis(Answer answer);
  ~FakeRedis();
  FakeRedis(const FakeRedis&) = delete;
  FakeRedis& operator=(const FakeRedis&) = delete;

  uint16_t port() const { return port_; }
  int connections() const { return connections_.load(); }

 private:
  void Serve();

  Answer answer_;
  int listener_ = -1;
  int wake_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::atomic<int> connections_{0};
  std::thread thread_;
};

}  // namespace vision_gateway::testing

#endif  // VISION_GATEWAY_TESTS_SERVICE_REDIS_REDIS_TEST_SERVER_H_
