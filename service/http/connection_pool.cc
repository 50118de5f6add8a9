#include "service/http/connection_pool_internal.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <string>
#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>

#include "absl/synchronization/mutex.h"

namespace vision_gateway::http::internal {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;

Connection::Connection(const net::any_io_executor& ex, ssl::context* tls_context,
                       std::string pool_key)
    : key(std::move(pool_key)) {
  // No read buffer yet: the exchange sizes it for the phase it reads (kHeadBufferBytes,
  // kReadBufferBytes), so that a connection waiting for an answer holds little.
  if (tls_context != nullptr) {
    tls = std::make_unique<ssl::stream<tcp::socket>>(ex, *tls_context);
  } else {
    plain.emplace(ex);
  }
}

void Connection::Close() {
  boost::system::error_code ignored;
  lowest().shutdown(tcp::socket::shutdown_both, ignored);
  lowest().close(ignored);
}

bool Connection::LooksIdle() {
  if (buffer.size() != 0 || !lowest().is_open()) return false;
  char byte;
  const ssize_t n = ::recv(lowest().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

void Connection::ReleaseBuffer() {
  if (buffer.size() == 0) buffer.shrink_to_fit();
}

ConnectionPool::ConnectionPool(const HttpClientOptions& options)
    : max_per_host_(options.max_connections_per_host),
      max_waiting_per_host_(options.max_waiting_requests_per_host),
      max_idle_per_host_(std::min(options.max_idle_connections_per_host,
                                  options.max_connections_per_host == 0
                                      ? options.max_idle_connections_per_host
                                      : options.max_connections_per_host)),
      idle_timeout_(options.idle_timeout) {}

ConnectionPool::~ConnectionPool() { Clear(); }

ConnectionPool::Acquired ConnectionPool::Acquire(const std::string& key, std::uint64_t waiter,
                                                 Grant grant) {
  absl::MutexLock lock(&mu_);
  Host& host = hosts_[key];
  const Clock::time_point now = Clock::now();
  while (!host.idle.empty()) {
    std::unique_ptr<Connection> conn = std::move(host.idle.back());
    host.idle.pop_back();
    if (now - conn->idle_since < idle_timeout_ && conn->LooksIdle()) {
      return {Result::kReuse, std::move(conn)};
    }
    conn->Close();
    --host.open;
  }
  if (max_per_host_ == 0 || host.open < max_per_host_) {
    ++host.open;
    return {Result::kOpen, nullptr};
  }
  if (host.waiters.size() >= max_waiting_per_host_) return {Result::kQueueFull, nullptr};
  host.waiters.emplace_back(waiter, std::move(grant));
  return {Result::kQueued, nullptr};
}

bool ConnectionPool::CancelWait(const std::string& key, std::uint64_t waiter) {
  absl::MutexLock lock(&mu_);
  auto it = hosts_.find(key);
  if (it == hosts_.end()) return false;
  auto& waiters = it->second.waiters;
  for (auto w = waiters.begin(); w != waiters.end(); ++w) {
    if (w->first == waiter) {
      waiters.erase(w);
      EraseIfUnused(it);
      return true;
    }
  }
  return false;
}

void ConnectionPool::Release(const std::string& key) {
  Grant grant;
  {
    absl::MutexLock lock(&mu_);
    auto it = hosts_.find(key);
    if (it == hosts_.end()) return;
    Host& host = it->second;
    --host.open;
    if (!host.waiters.empty()) {
      ++host.open;
      grant = std::move(host.waiters.front().second);
      host.waiters.pop_front();
    }
    EraseIfUnused(it);
  }
  if (grant) grant(nullptr);
}

void ConnectionPool::Clear() {
  absl::MutexLock lock(&mu_);
  for (auto it = hosts_.begin(); it != hosts_.end();) {
    Host& host = it->second;
    for (auto& conn : host.idle) conn->Close();
    host.open -= host.idle.size();
    host.idle.clear();
    auto next = std::next(it);
    EraseIfUnused(it);
    it = next;
  }
}

ConnectionPool::HostCounts ConnectionPool::Counts(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = hosts_.find(key);
  if (it == hosts_.end()) return {};
  return {it->second.open, it->second.idle.size(), it->second.waiters.size()};
}

void ConnectionPool::Put(std::unique_ptr<Connection> conn) {
  conn->idle_since = Clock::now();
  conn->ReleaseBuffer();
  Grant grant;
  {
    absl::MutexLock lock(&mu_);
    auto it = hosts_.find(conn->key);
    if (it == hosts_.end()) {  // cannot happen: the connection holds a slot of its host
      conn->Close();
      return;
    }
    Host& host = it->second;
    if (!host.waiters.empty()) {
      grant = std::move(host.waiters.front().second);
      host.waiters.pop_front();
    } else if (max_idle_per_host_ == 0) {
      conn->Close();
      --host.open;
      EraseIfUnused(it);
      return;
    } else {
      while (!host.idle.empty() &&
             (host.idle.size() >= max_idle_per_host_ ||
              conn->idle_since - host.idle.front()->idle_since >= idle_timeout_)) {
        host.idle.front()->Close();
        host.idle.pop_front();
        --host.open;
      }
      host.idle.push_back(std::move(conn));
      return;
    }
  }
  grant(std::move(conn));
}

void ConnectionPool::EraseIfUnused(std::map<std::string, Host>::iterator it) {
  if (it->second.open == 0 && it->second.waiters.empty()) hosts_.erase(it);
}

}  // namespace vision_gateway::http::internal
