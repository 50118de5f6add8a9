// The keep-alive pool on its own: reuse order, idle limits and timeouts, the per-host slot limit
// and its FIFO queue. Connections are real loopback sockets (their liveness check reads them).
#include "service/http/connection_pool_internal.h"

#include <poll.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include "gtest/gtest.h"
#include "service/http/http_client.h"

namespace vision_gateway::http::internal {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr char kHostA[] = "http://127.0.0.1:1";
constexpr char kHostB[] = "http://127.0.0.1:2";

// Makes connected loopback connections; keeps the server ends open.
class Sockets {
 public:
  Sockets() : acceptor_(ioc_, tcp::endpoint(net::ip::address_v4::loopback(), 0)) {}

  std::unique_ptr<Connection> Connect(const std::string& key) {
    auto conn = std::make_unique<Connection>(ioc_.get_executor(), nullptr, key);
    conn->lowest().connect(acceptor_.local_endpoint());
    peers_.emplace_back(ioc_);
    acceptor_.accept(peers_.back());
    return conn;
  }

  // The server end of the n-th connection made.
  tcp::socket& peer(std::size_t n) { return peers_.at(n); }

 private:
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::deque<tcp::socket> peers_;
};

HttpClientOptions Limits(std::size_t max_connections, std::size_t max_idle,
                         std::size_t max_waiting = 8,
                         std::chrono::milliseconds idle_timeout = std::chrono::seconds(30)) {
  HttpClientOptions options;
  options.max_connections_per_host = max_connections;
  options.max_idle_connections_per_host = max_idle;
  options.max_waiting_requests_per_host = max_waiting;
  options.idle_timeout = idle_timeout;
  return options;
}

// Takes a slot as a call would: the pool must answer kOpen.
void OpenSlot(ConnectionPool& pool, const std::string& key) {
  ASSERT_EQ(pool.Acquire(key, 0, nullptr).result, ConnectionPool::Result::kOpen);
}

// Records what a queued waiter was granted.
struct GrantLog {
  Grant For(int waiter) {
    return [this, waiter](std::unique_ptr<Connection> conn) {
      granted.emplace_back(waiter, conn.get());
      held.push_back(std::move(conn));
    };
  }
  std::vector<std::pair<int, Connection*>> granted;
  std::vector<std::unique_ptr<Connection>> held;
};

TEST(HttpConnectionPoolTest, ReusesTheMostRecentlyReturnedConnection) {
  Sockets sockets;
  ConnectionPool pool(Limits(4, 4));
  OpenSlot(pool, kHostA);
  OpenSlot(pool, kHostA);
  auto first = sockets.Connect(kHostA);
  auto second = sockets.Connect(kHostA);
  Connection* const second_ptr = second.get();
  pool.Put(std::move(first));
  pool.Put(std::move(second));
  EXPECT_EQ(pool.Counts(kHostA).idle, 2u);

  ConnectionPool::Acquired got = pool.Acquire(kHostA, 1, nullptr);

  EXPECT_EQ(got.result, ConnectionPool::Result::kReuse);
  EXPECT_EQ(got.conn.get(), second_ptr);
  EXPECT_EQ(pool.Counts(kHostA).open, 2u);  // a reused connection keeps its slot
  EXPECT_EQ(pool.Counts(kHostA).idle, 1u);
}

// An idle connection holds no read buffer (the exchange sizes one for what it reads next).
TEST(HttpConnectionPoolTest, PooledConnectionGivesBackItsReadBuffer) {
  Sockets sockets;
  ConnectionPool pool(Limits(4, 4));
  OpenSlot(pool, kHostA);
  auto conn = sockets.Connect(kHostA);
  conn->buffer.reserve(kReadBufferBytes);
  pool.Put(std::move(conn));

  ConnectionPool::Acquired got = pool.Acquire(kHostA, 1, nullptr);

  ASSERT_EQ(got.result, ConnectionPool::Result::kReuse);
  EXPECT_EQ(got.conn->buffer.capacity(), 0u);
}

TEST(HttpConnectionPoolTest, HostsHaveSeparateConnectionsAndLimits) {
  Sockets sockets;
  ConnectionPool pool(Limits(1, 1));
  OpenSlot(pool, kHostA);
  pool.Put(sockets.Connect(kHostA));

  EXPECT_EQ(pool.Acquire(kHostB, 1, nullptr).result, ConnectionPool::Result::kOpen);
  EXPECT_EQ(pool.Counts(kHostA).idle, 1u);
  EXPECT_EQ(pool.Counts(kHostB).open, 1u);
}

TEST(HttpConnectionPoolTest, IdleLimitClosesTheOldestAndFreesItsSlot) {
  Sockets sockets;
  ConnectionPool pool(Limits(8, 2));
  std::vector<std::unique_ptr<Connection>> conns;
  for (int i = 0; i < 3; ++i) {
    OpenSlot(pool, kHostA);
    conns.push_back(sockets.Connect(kHostA));
  }
  Connection* const oldest = conns[0].get();
  for (auto& conn : conns) pool.Put(std::move(conn));

  EXPECT_EQ(pool.Counts(kHostA).idle, 2u);
  EXPECT_EQ(pool.Counts(kHostA).open, 2u);
  // The two kept are the newer ones; after them a new slot.
  for (int i = 0; i < 2; ++i) {
    ConnectionPool::Acquired got = pool.Acquire(kHostA, 1, nullptr);
    EXPECT_EQ(got.result, ConnectionPool::Result::kReuse);
    EXPECT_NE(got.conn.get(), oldest);
  }
  EXPECT_EQ(pool.Acquire(kHostA, 1, nullptr).result, ConnectionPool::Result::kOpen);
}

TEST(HttpConnectionPoolTest, IdleLimitIsCappedByTheConnectionLimit) {
  Sockets sockets;
  ConnectionPool pool(Limits(/*max_connections=*/1, /*max_idle=*/16));
  OpenSlot(pool, kHostA);
  pool.Put(sockets.Connect(kHostA));
  EXPECT_EQ(pool.Counts(kHostA).idle, 1u);
  EXPECT_EQ(pool.Counts(kHostA).open, 1u);
}

TEST(HttpConnectionPoolTest, NoIdleConnectionsKeptWhenMaxIdleIsZero) {
  Sockets sockets;
  ConnectionPool pool(Limits(4, 0));
  OpenSlot(pool, kHostA);
  pool.Put(sockets.Connect(kHostA));
  EXPECT_EQ(pool.Counts(kHostA).idle, 0u);
  EXPECT_EQ(pool.Counts(kHostA).open, 0u);
}

TEST(HttpConnectionPoolTest, ConnectionIdleLongerThanTheTimeoutIsNotReused) {
  Sockets sockets;
  ConnectionPool pool(Limits(4, 4, 8, std::chrono::milliseconds(0)));
  OpenSlot(pool, kHostA);
  pool.Put(sockets.Connect(kHostA));

  ConnectionPool::Acquired got = pool.Acquire(kHostA, 1, nullptr);

  EXPECT_EQ(got.result, ConnectionPool::Result::kOpen);
  EXPECT_EQ(got.conn, nullptr);
  EXPECT_EQ(pool.Counts(kHostA).open, 1u);  // the expired one's slot went to the new one
  EXPECT_EQ(pool.Counts(kHostA).idle, 0u);
}

TEST(HttpConnectionPoolTest, ConnectionClosedByThePeerIsNotReused) {
  Sockets sockets;
  ConnectionPool pool(Limits(4, 4));
  OpenSlot(pool, kHostA);
  auto conn = sockets.Connect(kHostA);
  const int fd = conn->lowest().native_handle();
  pool.Put(std::move(conn));
  sockets.peer(0).close();
  // Wait (bounded) until the FIN is readable on the client end: an event, not a sleep.
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1);

  EXPECT_EQ(pool.Acquire(kHostA, 1, nullptr).result, ConnectionPool::Result::kOpen);
  EXPECT_EQ(pool.Counts(kHostA).open, 1u);
}

TEST(HttpConnectionPoolTest, ConnectionWithUnreadBytesIsNotReused) {
  Sockets sockets;
  ConnectionPool pool(Limits(4, 4));
  OpenSlot(pool, kHostA);
  auto conn = sockets.Connect(kHostA);
  const int fd = conn->lowest().native_handle();
  pool.Put(std::move(conn));
  net::write(sockets.peer(0), net::buffer("HTTP/1.1 200 OK\r\n", 17));
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1);

  EXPECT_EQ(pool.Acquire(kHostA, 1, nullptr).result, ConnectionPool::Result::kOpen);
}

TEST(HttpConnectionPoolTest, FullHostQueuesWaitersThenRefuses) {
  ConnectionPool pool(Limits(/*max_connections=*/1, 1, /*max_waiting=*/2));
  GrantLog log;
  OpenSlot(pool, kHostA);
  EXPECT_EQ(pool.Acquire(kHostA, 1, log.For(1)).result, ConnectionPool::Result::kQueued);
  EXPECT_EQ(pool.Acquire(kHostA, 2, log.For(2)).result, ConnectionPool::Result::kQueued);
  EXPECT_EQ(pool.Acquire(kHostA, 3, log.For(3)).result, ConnectionPool::Result::kQueueFull);
  EXPECT_EQ(pool.Counts(kHostA).waiting, 2u);
  EXPECT_TRUE(log.granted.empty());
}

TEST(HttpConnectionPoolTest, ZeroConnectionLimitMeansNoLimit) {
  ConnectionPool pool(Limits(/*max_connections=*/0, 4, /*max_waiting=*/0));
  for (int i = 0; i < 100; ++i) OpenSlot(pool, kHostA);
  EXPECT_EQ(pool.Counts(kHostA).open, 100u);
}

TEST(HttpConnectionPoolTest, ReleasedSlotGoesToTheOldestWaiter) {
  ConnectionPool pool(Limits(1, 1));
  GrantLog log;
  OpenSlot(pool, kHostA);
  ASSERT_EQ(pool.Acquire(kHostA, 1, log.For(1)).result, ConnectionPool::Result::kQueued);
  ASSERT_EQ(pool.Acquire(kHostA, 2, log.For(2)).result, ConnectionPool::Result::kQueued);

  pool.Release(kHostA);

  ASSERT_EQ(log.granted.size(), 1u);
  EXPECT_EQ(log.granted[0].first, 1);
  EXPECT_EQ(log.granted[0].second, nullptr);  // leave to open a new connection
  EXPECT_EQ(pool.Counts(kHostA).open, 1u);    // counted for the waiter already
  EXPECT_EQ(pool.Counts(kHostA).waiting, 1u);
}

TEST(HttpConnectionPoolTest, ReturnedConnectionIsHandedToTheOldestWaiter) {
  Sockets sockets;
  ConnectionPool pool(Limits(1, 1));
  GrantLog log;
  OpenSlot(pool, kHostA);
  ASSERT_EQ(pool.Acquire(kHostA, 7, log.For(7)).result, ConnectionPool::Result::kQueued);
  auto conn = sockets.Connect(kHostA);
  Connection* const ptr = conn.get();

  pool.Put(std::move(conn));

  ASSERT_EQ(log.granted.size(), 1u);
  EXPECT_EQ(log.granted[0].first, 7);
  EXPECT_EQ(log.granted[0].second, ptr);
  EXPECT_EQ(pool.Counts(kHostA).idle, 0u);
  EXPECT_EQ(pool.Counts(kHostA).open, 1u);
}

TEST(HttpConnectionPoolTest, CancelWaitLeavesTheQueueUnlessAlreadyGranted) {
  ConnectionPool pool(Limits(1, 1));
  GrantLog log;
  OpenSlot(pool, kHostA);
  ASSERT_EQ(pool.Acquire(kHostA, 1, log.For(1)).result, ConnectionPool::Result::kQueued);
  ASSERT_EQ(pool.Acquire(kHostA, 2, log.For(2)).result, ConnectionPool::Result::kQueued);

  EXPECT_TRUE(pool.CancelWait(kHostA, 1));
  pool.Release(kHostA);  // goes to waiter 2: 1 left
  EXPECT_FALSE(pool.CancelWait(kHostA, 2));  // granted: its slot is on the way

  ASSERT_EQ(log.granted.size(), 1u);
  EXPECT_EQ(log.granted[0].first, 2);
  EXPECT_EQ(pool.Counts(kHostA).waiting, 0u);
  EXPECT_FALSE(pool.CancelWait(kHostB, 1));  // a host the pool never saw
}

TEST(HttpConnectionPoolTest, ClearClosesIdleConnectionsAndForgetsUnusedHosts) {
  Sockets sockets;
  ConnectionPool pool(Limits(4, 4));
  OpenSlot(pool, kHostA);
  OpenSlot(pool, kHostB);
  pool.Put(sockets.Connect(kHostA));
  pool.Put(sockets.Connect(kHostB));
  ConnectionPool::Acquired in_use = pool.Acquire(kHostB, 1, nullptr);  // B's stays in use
  ASSERT_EQ(in_use.result, ConnectionPool::Result::kReuse);

  pool.Clear();

  EXPECT_EQ(pool.Counts(kHostA).open, 0u);
  EXPECT_EQ(pool.Counts(kHostB).open, 1u);
  EXPECT_EQ(pool.Counts(kHostB).idle, 0u);
}

}  // namespace
}  // namespace vision_gateway::http::internal
