// HttpClient over Boost.Beast + OpenSSL. The only place (with beast_impl.cc) that sees Boost.
//
// Shape: a Runtime (io_context + threads' shared state, TLS context, connection pool, registry of
// live calls) shared by the client, its I/O threads and every call; one CallImpl per request,
// owned by the handlers it has in flight (shared_from_this) and by the caller's shared_ptr<Call>.
// Every step of a call runs on the call's strand, so a call's state needs no lock. Connections
// carry no executor affinity: whichever call holds one binds its handlers to its own strand.
//
// Header values are never logged or put into error messages: they carry the API key. Neither is
// the URL's query string (it may carry ?key=).
#include "service/http/http_client.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "service/common/error_reasons.h"
#include "service/common/log.h"
#include "service/common/status_details.h"

namespace vision_gateway::http {

absl::Status WithRequestWritten(absl::Status status) {
  if (!status.ok()) status.SetPayload(kRequestWrittenPayloadUrl, absl::Cord("1"));
  return status;
}

bool RequestWritten(const absl::Status& status) {
  return status.GetPayload(kRequestWrittenPayloadUrl).has_value();
}

std::string_view FindHeader(const Headers& headers, std::string_view name) {
  const absl::string_view wanted(name.data(), name.size());
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, wanted)) return value;
  }
  return {};
}

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
namespace urls = boost::urls;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

constexpr std::string_view kUserAgent = "vision-gateway/0.1";
// Size of the buffer body pieces are read into (and so the largest on_body piece).
constexpr std::size_t kReadPieceBytes = 64 * 1024;
// Largest paced body (StreamHandler::on_paced_body): above the Files API's 2 GB per file.
constexpr std::uint64_t kMaxPacedBodyBytes = std::uint64_t{4} << 30;
// Socket read buffer kept by each connection.
constexpr std::size_t kReadBufferBytes = 16 * 1024;
// Deadlines further away than this are treated as "no deadline" (avoids clock overflow).
constexpr absl::Duration kFarFuture = absl::Hours(24 * 365);

// ---------------------------------------------------------------------------------------------
// URL and request validation.

struct Target {
  bool tls = false;
  std::string host;         // for resolve and certificate checks: no brackets, decoded
  bool host_is_name = false;  // a DNS name (SNI is sent only for names)
  std::uint16_t port = 0;
  std::string host_header;  // Host: value
  std::string target;       // origin-form request target: path?query
  std::string authority;    // host:port, for messages
  std::string pool_key;     // scheme://host:port
};

bool IsTokenChar(char c) {
  if (absl::ascii_isalnum(static_cast<unsigned char>(c))) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

bool IsValidHeaderValue(std::string_view s) {
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

bool IsValidHostName(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') {
      return false;
    }
  }
  return true;
}

absl::StatusOr<Target> ParseTarget(std::string_view url) {
  // The URL is not echoed in errors: its query may hold a key.
  auto parsed = urls::parse_uri(urls::string_view(url.data(), url.size()));
  if (!parsed) {
    return absl::InvalidArgumentError(absl::StrCat("malformed URL: ", parsed.error().message()));
  }
  const urls::url_view& u = *parsed;
  Target t;
  if (u.scheme_id() == urls::scheme::https) {
    t.tls = true;
  } else if (u.scheme_id() != urls::scheme::http) {
    return absl::InvalidArgumentError("URL scheme must be http or https");
  }
  if (!u.has_authority()) return absl::InvalidArgumentError("URL has no host");
  if (u.has_userinfo()) return absl::InvalidArgumentError("URLs with user info are not supported");

  bool loopback = false;
  bool ipv6 = false;
  switch (u.host_type()) {
    case urls::host_type::ipv4:
      t.host = std::string(u.encoded_host_address());
      loopback = (u.host_ipv4_address().to_uint() >> 24) == 127;
      break;
    case urls::host_type::ipv6:
      t.host = std::string(u.encoded_host_address());
      loopback = u.host_ipv6_address().is_loopback();
      ipv6 = true;
      break;
    case urls::host_type::name:
      t.host = absl::AsciiStrToLower(u.host_name());
      if (!IsValidHostName(t.host)) return absl::InvalidArgumentError("URL has an invalid host name");
      t.host_is_name = true;
      loopback = t.host == "localhost";
      break;
    default:
      return absl::InvalidArgumentError("URL has no usable host");
  }
  if (!t.tls && !loopback) {
    return absl::InvalidArgumentError(absl::StrCat(
        "http:// is only allowed to loopback hosts; use https:// for ", t.host));
  }

  const std::uint16_t default_port = t.tls ? 443 : 80;
  t.port = default_port;
  if (u.has_port() && !u.port().empty()) {
    t.port = u.port_number();
    if (t.port == 0) return absl::InvalidArgumentError("URL has an invalid port");
  }

  const std::string bracketed = ipv6 ? absl::StrCat("[", t.host, "]") : t.host;
  t.host_header = t.port == default_port ? bracketed : absl::StrCat(bracketed, ":", t.port);
  t.authority = absl::StrCat(bracketed, ":", t.port);
  t.pool_key = absl::StrCat(t.tls ? "https://" : "http://", t.authority);
  t.target = std::string(u.encoded_path());
  if (t.target.empty()) t.target = "/";
  if (t.target.front() != '/') return absl::InvalidArgumentError("URL path must be absolute");
  if (u.has_query()) absl::StrAppend(&t.target, "?", std::string(u.encoded_query()));
  return t;
}

bool IsReservedHeader(std::string_view name) {
  const absl::string_view n(name.data(), name.size());
  return absl::EqualsIgnoreCase(n, "host") || absl::EqualsIgnoreCase(n, "content-length") ||
         absl::EqualsIgnoreCase(n, "transfer-encoding") || absl::EqualsIgnoreCase(n, "connection");
}

// ---------------------------------------------------------------------------------------------
// TLS host name check that records *why* it failed, for the error message.

class VerifyHostName {
 public:
  explicit VerifyHostName(const std::string& host) : check_(host) {}

  bool operator()(bool preverified, ssl::verify_context& ctx) const {
    if (!preverified) return false;
    if (check_(preverified, ctx)) return true;
    X509_STORE_CTX_set_error(ctx.native_handle(), X509_V_ERR_HOSTNAME_MISMATCH);
    return false;
  }

 private:
  ssl::host_name_verification check_;
};

// ---------------------------------------------------------------------------------------------
// Connections and the keep-alive pool.

struct Connection {
  Connection(const net::any_io_executor& ex, ssl::context* tls_context, std::string pool_key)
      : key(std::move(pool_key)) {
    // Beast reads max(512, free capacity) bytes at a time: without room reserved up front every
    // read of a streamed body would be a 512-byte recv (three per SSE event).
    buffer.reserve(kReadBufferBytes);
    if (tls_context != nullptr) {
      tls.emplace(ex, *tls_context);
    } else {
      plain.emplace(ex);
    }
  }

  beast::tcp_stream& lowest() { return tls ? tls->next_layer() : *plain; }

  // Closes the socket; pending operations complete with an error. The object stays valid.
  void Close() {
    error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().close();
  }

  // An idle connection is usable when nothing arrived on it: no data, no EOF, no error.
  bool LooksIdle() {
    if (buffer.size() != 0 || !lowest().socket().is_open()) return false;
    char byte;
    const ssize_t n =
        ::recv(lowest().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  std::string key;
  std::optional<beast::tcp_stream> plain;
  std::optional<ssl::stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  Clock::time_point idle_since;
};

// Hands a freed connection slot to a waiting call: a kept-alive connection to reuse, or null
// (the call may open a new connection, already counted for it). Called outside the pool's lock;
// it only posts to the waiting call's strand.
using Grant = absl::AnyInvocable<void(std::unique_ptr<Connection>)>;

// Keep-alive connections per host:port, and the per-host connection limit. Every connection open
// to a host (idle here, in use by a call, or being opened) holds one of its slots; a call that
// finds none free waits in the host's FIFO queue until one is released or handed over.
class ConnectionPool {
 public:
  ConnectionPool(const HttpClientOptions& options)
      : max_per_host_(options.max_connections_per_host),
        max_waiting_per_host_(options.max_waiting_requests_per_host),
        max_idle_per_host_(std::min(options.max_idle_connections_per_host,
                                    options.max_connections_per_host == 0
                                        ? options.max_idle_connections_per_host
                                        : options.max_connections_per_host)),
        idle_timeout_(options.idle_timeout) {}

  ~ConnectionPool() { Clear(); }

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
  Acquired Acquire(const std::string& key, std::uint64_t waiter, Grant grant) {
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

  // Leaves the queue. False when the waiter is no longer in it: a slot was granted to it and its
  // grant is on the way (the waiter must then give that slot back).
  bool CancelWait(const std::string& key, std::uint64_t waiter) {
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

  // A slot of `key` is free: its connection was closed (or never opened). The oldest waiter, if
  // any, gets it to open a new connection.
  void Release(const std::string& key) {
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

  // Closes every idle connection.
  void Clear() {
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

  // Takes back a connection whose last response was read completely and allowed keep-alive: the
  // oldest waiter gets it, else it is kept idle (or closed when max_idle_per_host is reached).
  void Put(std::unique_ptr<Connection> conn) {
    conn->idle_since = Clock::now();
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

 private:
  struct Host {
    std::deque<std::unique_ptr<Connection>> idle;  // oldest first
    std::size_t open = 0;                          // slots held: idle + in use + being opened
    std::deque<std::pair<std::uint64_t, Grant>> waiters;  // oldest first
  };

  void EraseIfUnused(std::map<std::string, Host>::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (it->second.open == 0 && it->second.waiters.empty()) hosts_.erase(it);
  }

  const std::size_t max_per_host_;
  const std::size_t max_waiting_per_host_;
  const std::size_t max_idle_per_host_;
  const std::chrono::milliseconds idle_timeout_;
  absl::Mutex mu_;
  std::map<std::string, Host> hosts_ ABSL_GUARDED_BY(mu_);
};

// ---------------------------------------------------------------------------------------------
// Shared state of one client.

class CallImpl;

struct Runtime {
  explicit Runtime(HttpClientOptions opts)
      : options(std::move(opts)),
        ioc(std::max(1, options.io_threads)),
        tls_context(ssl::context::tls_client),
        pool(options),
        work(net::make_work_guard(ioc)) {}

  // Registers a call so the client's destructor can cancel it. False when shutting down.
  bool Register(CallImpl* call, std::weak_ptr<CallImpl> weak) {
    absl::MutexLock lock(&mu);
    if (shutting_down) return false;
    live.emplace(call, std::move(weak));
    return true;
  }
  void Unregister(CallImpl* call) {
    absl::MutexLock lock(&mu);
    live.erase(call);
  }

  const HttpClientOptions options;
  net::io_context ioc;
  ssl::context tls_context;
  ConnectionPool pool;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;

  absl::Mutex mu;
  bool shutting_down ABSL_GUARDED_BY(mu) = false;
  std::unordered_map<CallImpl*, std::weak_ptr<CallImpl>> live ABSL_GUARDED_BY(mu);
};

// ---------------------------------------------------------------------------------------------
// One request.

class CallImpl final : public Call, public std::enable_shared_from_this<CallImpl> {
 public:
  CallImpl(std::shared_ptr<Runtime> runtime, Request request, StreamHandler handler)
      : rt_(std::move(runtime)),
        strand_(net::make_strand(rt_->ioc)),
        request_(std::move(request)),
        handler_(std::move(handler)),
        resolver_(strand_),
        resolve_timer_(strand_),
        wait_timer_(strand_),
        body_timer_(strand_) {}

  // Starts the call on its strand; never completes it inline.
  void Start() {
    if (!rt_->Register(this, weak_from_this())) cancel_requested_.store(true);
    net::post(strand_, [self = shared_from_this()] {
      if (self->cancel_requested_.load() && !self->done_) {
        self->Complete(absl::CancelledError("HTTP client is shutting down"));
        return;
      }
      self->Begin();
    });
  }

  void Cancel() override {
    if (finished_.load() || cancel_requested_.exchange(true)) return;
    net::post(strand_, [self = shared_from_this()] {
      self->Complete(absl::CancelledError("HTTP request cancelled"));
    });
  }

 private:
  enum class Phase {
    kWaitConnection,
    kResolve,
    kConnect,
    kHandshake,
    kWrite,
    kWaitBody,
    kReadHeader,
    kReadBody,
    kWaitReader  // a paced body: waiting for the handler to ask for the next piece
  };

  static const char* PhaseName(Phase phase) {
    switch (phase) {
      case Phase::kWaitConnection:
        return "waiting for a free connection to";
      case Phase::kResolve:
        return "resolving";
      case Phase::kConnect:
        return "connecting to";
      case Phase::kHandshake:
        return "TLS handshake with";
      case Phase::kWrite:
        return "sending the request to";
      case Phase::kWaitBody:
        return "waiting for the rest of the request body for";
      case Phase::kReadHeader:
        return "reading the response header from";
      case Phase::kReadBody:
        return "reading the response body from";
      case Phase::kWaitReader:
        return "waiting for the reader of the response body from";
    }
    return "talking to";
  }

  template <typename F>
  auto OnStrand(F&& f) {
    return net::bind_executor(strand_, std::forward<F>(f));
  }

  template <typename F>
  void WithStream(F&& f) {
    if (conn_->tls) {
      f(*conn_->tls);
    } else {
      f(*conn_->plain);
    }
  }

  // True when the call must not start anything more (it finished, or a cancel is queued).
  bool Abandoned() const { return done_ || cancel_requested_.load(); }

  // Sets the expiry of the phase about to start: the request's deadline when it has one (the
  // caller's deadline rules, however far), else now + default_phase_timeout.
  Clock::time_point StartPhase(Phase phase) {
    phase_ = phase;
    const Clock::time_point expiry =
        deadline_ ? *deadline_ : Clock::now() + rt_->options.default_phase_timeout;
    phase_expiry_ = expiry;
    if (conn_) conn_->lowest().expires_at(expiry);
    return expiry;
  }

  void Begin() {
    if (Abandoned()) return;
    auto target = ParseTarget(request_.url);
    if (!target.ok()) {
      Complete(target.status());
      return;
    }
    target_ = *std::move(target);

    if (request_.deadline != absl::InfiniteFuture()) {
      const absl::Duration remaining = request_.deadline - absl::Now();
      if (remaining <= absl::ZeroDuration()) {
        Complete(absl::DeadlineExceededError(
            absl::StrCat("deadline passed before the request to ", target_.authority, " started")));
        return;
      }
      if (remaining < kFarFuture) {
        deadline_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                       absl::ToChronoNanoseconds(remaining));
      }
    }

    if (absl::Status s = BuildRequest(); !s.ok()) {
      Complete(std::move(s));
      return;
    }
    Acquire();
  }

  absl::Status BuildRequest() {
    if (!IsToken(request_.method)) return absl::InvalidArgumentError("invalid HTTP method");
    const bhttp::verb verb = bhttp::string_to_verb(request_.method);
    if (verb == bhttp::verb::unknown) {
      req_.method_string(request_.method);
    } else {
      req_.method(verb);
    }
    req_.target(target_.target);
    req_.version(11);
    bool has_user_agent = false;
    for (const auto& [name, value] : request_.headers) {
      // Names may be reported; values never (they carry the API key).
      if (!IsToken(name)) return absl::InvalidArgumentError("invalid HTTP header name");
      if (!IsValidHeaderValue(value)) {
        return absl::InvalidArgumentError(absl::StrCat("invalid value for HTTP header ", name));
      }
      if (IsReservedHeader(name)) continue;  // framing headers are ours to set
      if (absl::EqualsIgnoreCase(name, "user-agent")) has_user_agent = true;
      req_.insert(name, value);
    }
    req_.set(bhttp::field::host, target_.host_header);
    if (!has_user_agent) req_.set(bhttp::field::user_agent, kUserAgent);
    // The body is sent from where it lies: request_.body (a member, never moved) with the
    // header, or the streamed bytes after it (WriteBody).
    std::size_t body_size = request_.body.size();
    if (request_.streamed_body != nullptr) {
      if (!request_.body.empty() ||
          request_.streamed_body_offset > request_.streamed_body->size()) {
        return absl::InvalidArgumentError("invalid streamed request body");
      }
      body_size = request_.streamed_body->size() - request_.streamed_body_offset;
    } else {
      req_.body() =
          bhttp::span_body<const char>::value_type(request_.body.data(), request_.body.size());
    }
    if (body_size != 0 || verb == bhttp::verb::post || verb == bhttp::verb::put ||
        verb == bhttp::verb::patch) {
      req_.content_length(body_size);
    }
    request_.headers.clear();
    return absl::OkStatus();
  }

  // A pooled connection if one is idle, else a new one if the host has a free slot, else a wait
  // for one (max_connections_per_host). A request that fails on a reused connection before any
  // response byte is not sent again here: it fails UPSTREAM_UNREACHABLE and the retry policy
  // (gemini/retrying_gemini_client.h) decides.
  void Acquire() {
    static std::atomic<std::uint64_t> next_waiter{1};
    waiter_id_ = next_waiter.fetch_add(1);
    ConnectionPool::Acquired got = rt_->pool.Acquire(
        target_.pool_key, waiter_id_, [self = shared_from_this()](std::unique_ptr<Connection> conn) {
          net::post(self->strand_, [self, conn = std::move(conn)]() mutable {
            self->OnGranted(std::move(conn));
          });
        });
    switch (got.result) {
      case ConnectionPool::Result::kReuse:
        holds_slot_ = true;
        conn_ = std::move(got.conn);
        Write();
        return;
      case ConnectionPool::Result::kOpen:
        holds_slot_ = true;
        Resolve();
        return;
      case ConnectionPool::Result::kQueueFull:
        // Not the caller's quota and not Gemini's: the gateway's own overload. The message names
        // no host (callers see it).
        Complete(WithRetryInfo(
            WithOutcome(absl::ResourceExhaustedError(absl::StrCat(
                            "the gateway has ", rt_->options.max_waiting_requests_per_host,
                            " requests waiting for an upstream connection; retry later")),
                        reasons::kServerOverloaded),
            absl::Seconds(1)));
        return;
      case ConnectionPool::Result::kQueued:
        break;
    }
    waiting_ = true;
    wait_timer_.expires_at(StartPhase(Phase::kWaitConnection));
    wait_timer_.async_wait(OnStrand([self = shared_from_this()](error_code ec) {
      if (ec || !self->waiting_ || self->done_) return;
      // Still queued: give up. Otherwise a slot is on its way and the call goes on with it.
      if (self->rt_->pool.CancelWait(self->target_.pool_key, self->waiter_id_)) {
        self->waiting_ = false;
        self->Complete(self->TimeoutStatus());
      }
    }));
  }

  // A slot freed by another call reached this one: a kept-alive connection, or leave to open one.
  void OnGranted(std::unique_ptr<Connection> conn) {
    waiting_ = false;
    wait_timer_.cancel();
    if (done_) {  // finished while the grant was on its way: the slot goes back
      if (conn) {
        rt_->pool.Put(std::move(conn));
      } else {
        rt_->pool.Release(target_.pool_key);
      }
      return;
    }
    holds_slot_ = true;
    conn_ = std::move(conn);
    if (cancel_requested_.load()) return;  // the queued Complete closes and releases it
    if (conn_) {
      Write();
    } else {
      Resolve();
    }
  }

  void Resolve() {
    const Clock::time_point expiry = StartPhase(Phase::kResolve);
    resolving_ = true;
    resolve_timed_out_ = false;
    resolve_timer_.expires_at(expiry);
    resolve_timer_.async_wait(OnStrand([self = shared_from_this()](error_code ec) {
      if (ec || !self->resolving_) return;
      self->resolve_timed_out_ = true;
      self->resolver_.cancel();
    }));
    resolver_.async_resolve(
        target_.host, std::to_string(target_.port), tcp::resolver::numeric_service,
        OnStrand([self = shared_from_this()](error_code ec, tcp::resolver::results_type results) {
          self->OnResolve(ec, std::move(results));
        }));
  }

  void OnResolve(error_code ec, tcp::resolver::results_type results) {
    resolving_ = false;
    resolve_timer_.cancel();
    if (Abandoned()) return;
    if (resolve_timed_out_) {
      Complete(TimeoutStatus());
      return;
    }
    if (ec) {
      Fail(ec);
      return;
    }
    conn_ = std::make_unique<Connection>(rt_->ioc.get_executor(),
                                         target_.tls ? &rt_->tls_context : nullptr,
                                         target_.pool_key);
    StartPhase(Phase::kConnect);
    conn_->lowest().async_connect(
        results, OnStrand([self = shared_from_this()](error_code ec, const tcp::endpoint&) {
          self->OnConnect(ec);
        }));
  }

  void OnConnect(error_code ec) {
    if (Abandoned()) return;
    if (ec) {
      Fail(ec);
      return;
    }
    // Requests are written whole; never hold a segment back waiting for an ACK (Nagle).
    error_code ignored;
    conn_->lowest().socket().set_option(tcp::no_delay(true), ignored);
    if (conn_->tls) {
      Handshake();
    } else {
      Write();
    }
  }

  void Handshake() {
    ssl::stream<beast::tcp_stream>& stream = *conn_->tls;
    if (target_.host_is_name &&
        SSL_set_tlsext_host_name(stream.native_handle(), target_.host.c_str()) != 1) {
      Complete(absl::InternalError(absl::StrCat("cannot set TLS SNI for ", target_.authority)));
      return;
    }
    error_code ec;
    stream.set_verify_mode(ssl::verify_peer, ec);
    if (!ec) stream.set_verify_callback(VerifyHostName(target_.host), ec);
    if (ec) {
      Complete(absl::InternalError(
          absl::StrCat("cannot configure TLS verification for ", target_.authority)));
      return;
    }
    StartPhase(Phase::kHandshake);
    stream.async_handshake(ssl::stream_base::client,
                           OnStrand([self = shared_from_this()](error_code ec) {
                             self->OnHandshake(ec);
                           }));
  }

  void OnHandshake(error_code ec) {
    if (Abandoned()) return;
    if (ec) {
      Fail(ec);
      return;
    }
    Write();
  }

  void Write() {
    StartPhase(Phase::kWrite);
    if (request_.streamed_body != nullptr) {
      // The header alone; then the body bytes as they arrive (WriteBody).
      header_serializer_.emplace(req_);
      WithStream([this](auto& stream) {
        bhttp::async_write_header(
            stream, *header_serializer_,
            OnStrand([self = shared_from_this()](error_code ec, std::size_t) {
              self->OnBodyWritten(ec, 0);
            }));
      });
      return;
    }
    WithStream([this](auto& stream) {
      bhttp::async_write(stream, req_,
                         OnStrand([self = shared_from_this()](error_code ec, std::size_t) {
                           self->OnWrite(ec);
                         }));
    });
  }

  // Sends the streamed body's bytes that are there, one write at a time; with none there, waits
  // for the producer (bounded by the deadline, if any). One write or one wait is pending at once.
  void WriteBody() {
    if (Abandoned()) return;
    const GrowingBuffer& body = *request_.streamed_body;
    const std::size_t at = request_.streamed_body_offset + body_sent_;
    const std::string_view written = body.View();
    if (written.size() > at) {
      StartPhase(Phase::kWrite);  // each write is one bounded phase
      WithStream([this, piece = written.substr(at)](auto& stream) {
        net::async_write(stream, net::buffer(piece.data(), piece.size()),
                         OnStrand([self = shared_from_this()](error_code ec, std::size_t n) {
                           self->OnBodyWritten(ec, n);
                         }));
      });
      return;
    }
    if (body.abandoned()) {
      Complete(absl::CancelledError(absl::StrCat("the request body for ", target_.authority,
                                                 " was abandoned before it was complete")));
      return;
    }
    phase_ = Phase::kWaitBody;
    if (deadline_) {
      body_timer_.expires_at(*deadline_);
      body_timer_.async_wait(OnStrand([self = shared_from_this()](error_code ec) {
        if (ec || self->Abandoned() || self->phase_ != Phase::kWaitBody) return;
        self->Complete(self->TimeoutStatus());
      }));
    }
    // No I/O is pending to keep the call alive while it waits: it holds itself until the wake
    // or Complete (the buffer holds only a weak reference, so a buffer that outlives an ended
    // call keeps nothing of it).
    waiting_self_ = shared_from_this();
    request_.streamed_body->WhenMore(at, [weak = weak_from_this()] {
      if (auto self = weak.lock()) {
        net::post(self->strand_, [self] {
          self->waiting_self_.reset();
          self->body_timer_.cancel();
          self->WriteBody();
        });
      }
    });
  }

  void OnBodyWritten(error_code ec, std::size_t n) {
    if (Abandoned()) return;
    if (ec) {
      Fail(ec);
      return;
    }
    body_sent_ += n;
    if (request_.streamed_body_offset + body_sent_ == request_.streamed_body->size()) {
      OnWrite(ec);
      return;
    }
    WriteBody();
  }

  void OnWrite(error_code ec) {
    if (Abandoned()) return;
    if (ec) {
      Fail(ec);
      return;
    }
    // Sent: the body is let go now, not when the answer ends (a large inline request is not held
    // through a long stream, and the owner of a shared body may reuse it as soon as it has the
    // answer). Only here: after a failed or abandoned write, Asio may still read the buffers.
    req_.body() = bhttp::span_body<const char>::value_type();
    header_serializer_.reset();
    request_.body = std::string();
    request_.streamed_body.reset();
    ReadHeader();
  }

  void ReadHeader() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(rt_->options.max_response_header_bytes, UINT32_MAX)));
    // A paced body is held one piece at a time, so max_response_body_bytes (a bound on what is
    // buffered) does not apply; kMaxPacedBodyBytes bounds how long such a reader may read.
    parser_->body_limit(handler_.on_paced_body
                            ? kMaxPacedBodyBytes
                            : static_cast<std::uint64_t>(rt_->options.max_response_body_bytes));
    if (req_.method() == bhttp::verb::head) parser_->skip(true);
    StartPhase(Phase::kReadHeader);
    WithStream([this](auto& stream) {
      bhttp::async_read_header(stream, conn_->buffer, *parser_,
                               OnStrand([self = shared_from_this()](error_code ec, std::size_t) {
                                 self->OnHeader(ec);
                               }));
    });
  }

  void OnHeader(error_code ec) {
    if (Abandoned()) return;
    if (ec) {
      Fail(ec);
      return;
    }
    const auto& message = parser_->get();
    const int status = message.result_int();
    if (status >= 100 && status < 200 && status != 101) {
      ReadHeader();  // an interim response (100 Continue, 103 Early Hints): the real one follows
      return;
    }
    ResponseHead head;
    head.status = status;
    for (const auto& field : message) {
      head.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    if (handler_.on_head && !Deliver([&] { handler_.on_head(head); })) return;
    ReadBody();
  }

  void ReadBody() {
    if (Abandoned()) return;
    if (parser_->is_done()) {
      Succeed();
      return;
    }
    if (piece_.empty()) piece_.resize(kReadPieceBytes);
    parser_->get().body().data = piece_.data();
    parser_->get().body().size = piece_.size();
    StartPhase(Phase::kReadBody);
    WithStream([this](auto& stream) {
      bhttp::async_read_some(stream, conn_->buffer, *parser_,
                             OnStrand([self = shared_from_this()](error_code ec, std::size_t) {
                               self->OnBody(ec);
                             }));
    });
  }

  void OnBody(error_code ec) {
    if (Abandoned()) return;
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec == ssl::error::stream_truncated && parser_->need_eof()) {
      // A body delimited by the end of the connection, from a server that closes without
      // close_notify (common, and harmless for HTTP framing): that is the end of the body.
      ec = {};
      parser_->put_eof(ec);
    }
    const std::size_t n = piece_.size() - parser_->get().body().size;
    if (handler_.on_paced_body) {
      if (ec) {
        Fail(ec);
      } else if (n == 0) {
        ReadBody();
      } else {
        WaitForReader(n);
      }
      return;
    }
    if (n > 0 && handler_.on_body &&
        !Deliver([&] { handler_.on_body(std::string_view(piece_.data(), n)); })) {
      return;
    }
    if (ec) {
      Fail(ec);
      return;
    }
    ReadBody();
  }

  // A paced body: hands the piece over and reads nothing more until the handler resumes.
  void WaitForReader(std::size_t n) {
    phase_ = Phase::kWaitReader;
    if (deadline_) {
      body_timer_.expires_at(*deadline_);
      body_timer_.async_wait(OnStrand([self = shared_from_this()](error_code ec) {
        if (ec || self->Abandoned() || self->phase_ != Phase::kWaitReader) return;
        self->Complete(self->TimeoutStatus());
      }));
    }
    // No I/O is pending to keep the call alive while the reader holds the piece.
    waiting_self_ = shared_from_this();
    const std::uint64_t wait = ++reader_waits_;
    absl::AnyInvocable<void()> resume = [weak = weak_from_this(), wait] {
      if (auto self = weak.lock()) {
        net::post(self->strand_, [self, wait] {
          if (self->done_ || self->phase_ != Phase::kWaitReader || self->reader_waits_ != wait) {
            return;
          }
          self->waiting_self_.reset();
          self->body_timer_.cancel();
          self->ReadBody();
        });
      }
    };
    Deliver([&] { handler_.on_paced_body(std::string_view(piece_.data(), n), std::move(resume)); });
  }

  void Succeed() {
    if (parser_->keep_alive() && conn_->buffer.size() == 0) {
      conn_->lowest().expires_never();
      holds_slot_ = false;  // the slot stays with the connection
      rt_->pool.Put(std::move(conn_));
    }
    Complete(absl::OkStatus());
  }

  // Every failure is tagged with its row of the error table (WithOutcome, error_reasons.h); the
  // messages name the host for the operator's log, and the table decides what a caller sees.
  absl::Status TimeoutStatus() const {
    if (deadline_ && Clock::now() >= *deadline_) {
      return WithOutcome(absl::DeadlineExceededError(absl::StrCat(
                             "deadline exceeded while ", PhaseName(phase_), " ", target_.authority)),
                         reasons::kUpstreamTimeout);
    }
    return WithOutcome(
        absl::DeadlineExceededError(absl::StrCat("timed out after ",
                                                 rt_->options.default_phase_timeout.count(),
                                                 " ms while ", PhaseName(phase_), " ",
                                                 target_.authority)),
        reasons::kUpstreamTimeout);
  }

  // True when no byte of a response was read on this connection: the request may be sent again
  // without risk of a second answer (the policy that decides is the retry decorator's).
  bool BeforeResponse() const {
    return phase_ == Phase::kWaitConnection || phase_ == Phase::kResolve ||
           phase_ == Phase::kConnect ||
           phase_ == Phase::kHandshake || phase_ == Phase::kWrite || phase_ == Phase::kWaitBody ||
           (phase_ == Phase::kReadHeader && parser_ && !parser_->got_some());
  }

  absl::Status ErrorStatus(error_code ec) const {
    const std::string where = absl::StrCat(PhaseName(phase_), " ", target_.authority);
    if (ec == beast::error::timeout || Clock::now() >= phase_expiry_) return TimeoutStatus();
    if (ec == bhttp::error::body_limit) {
      return WithOutcome(absl::ResourceExhaustedError(absl::StrCat(
                             "response body from ", target_.authority, " exceeds ",
                             rt_->options.max_response_body_bytes, " bytes")),
                         reasons::kUpstreamResponseTooLarge);
    }
    if (ec == bhttp::error::header_limit) {
      return WithOutcome(absl::ResourceExhaustedError(absl::StrCat(
                             "response header from ", target_.authority, " exceeds ",
                             rt_->options.max_response_header_bytes, " bytes")),
                         reasons::kUpstreamResponseTooLarge);
    }
    if (phase_ == Phase::kHandshake && ec.category() == net::error::get_ssl_category()) {
      std::string message =
          absl::StrCat("TLS handshake with ", target_.authority, " failed: ", ec.message());
      const long verify = SSL_get_verify_result(conn_->tls->native_handle());
      if (verify != X509_V_OK) {
        absl::StrAppend(&message, ": ", X509_verify_cert_error_string(verify));
      }
      return WithOutcome(absl::UnavailableError(message), reasons::kUpstreamTls);
    }
    if (phase_ == Phase::kResolve) {
      return WithOutcome(absl::UnavailableError(absl::StrCat("cannot resolve ", target_.host, ": ",
                                                             ec.message())),
                         reasons::kUpstreamUnreachable);
    }
    if (phase_ == Phase::kConnect) {
      return WithOutcome(absl::UnavailableError(absl::StrCat(
                             "cannot connect to ", target_.authority, ": ", ec.message())),
                         reasons::kUpstreamUnreachable);
    }
    if (ec.category() == bhttp::make_error_code(bhttp::error::bad_version).category() &&
        ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
      return WithOutcome(absl::UnavailableError(absl::StrCat("malformed HTTP response from ",
                                                             target_.authority, ": ",
                                                             ec.message())),
                         reasons::kUpstreamBadResponse);
    }
    const char* outcome =
        BeforeResponse() ? reasons::kUpstreamUnreachable : reasons::kUpstreamConnectionLost;
    if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
        ec == net::error::eof || ec == ssl::error::stream_truncated) {
      return WithOutcome(absl::UnavailableError(absl::StrCat(
                             "connection closed while ", where, " before the response ended")),
                         outcome);
    }
    return WithOutcome(
        absl::UnavailableError(absl::StrCat("error while ", where, ": ", ec.message())), outcome);
  }

  void Fail(error_code ec) { Complete(ErrorStatus(ec)); }

  // Runs a handler callback. An exception (bad_alloc while decoding, ...) fails this call — the
  // process and the I/O thread live on. False when it threw (the call is then complete).
  template <typename F>
  bool Deliver(F&& f) {
    const char* what = nullptr;
    std::string detail;
    try {
      f();
      return true;
    } catch (const std::exception& e) {
      detail = e.what();
      what = detail.c_str();
    } catch (...) {
      what = "unknown exception";
    }
    LogError("HTTP response handler threw (%s); failing the call", what);
    Complete(WithOutcome(absl::InternalError("the gateway failed while reading Gemini's answer"),
                         reasons::kInternalError));
    return false;
  }

  // Runs on the strand. Calls on_done once; afterwards every pending handler sees done_.
  void Complete(absl::Status status) {
    if (done_) return;
    // The call may be held only by this reference (waiting for streamed body bytes): released
    // when Complete returns, after its last use of the call.
    const std::shared_ptr<CallImpl> keep = std::move(waiting_self_);
    done_ = true;
    finished_.store(true);
    // Close, but keep the object: operations may still be pending on it.
    if (conn_) conn_->Close();
    if (holds_slot_) {
      holds_slot_ = false;
      rt_->pool.Release(target_.pool_key);
    }
    if (waiting_) {
      waiting_ = false;
      // When already granted, OnGranted gives the slot back.
      (void)rt_->pool.CancelWait(target_.pool_key, waiter_id_);
    }
    wait_timer_.cancel();
    body_timer_.cancel();
    resolving_ = false;
    resolver_.cancel();
    resolve_timer_.cancel();
    rt_->Unregister(this);
    // The whole request was on the wire when this failure came (a reply may have been cut
    // short): say so, for the caller's idempotency policy.
    if (!status.ok() && status.code() != absl::StatusCode::kCancelled &&
        (phase_ == Phase::kReadHeader || phase_ == Phase::kReadBody ||
         phase_ == Phase::kWaitReader)) {
      status = WithRequestWritten(std::move(status));
    }
    absl::AnyInvocable<void(absl::Status)> on_done = std::move(handler_.on_done);
    handler_ = StreamHandler();
    if (!on_done) return;
    try {
      on_done(std::move(status));
    } catch (const std::exception& e) {
      LogError("HTTP completion handler threw (%s)", e.what());
    } catch (...) {
      LogError("HTTP completion handler threw");
    }
  }

  const std::shared_ptr<Runtime> rt_;
  net::strand<net::io_context::executor_type> strand_;
  Request request_;
  StreamHandler handler_;
  Target target_;
  bhttp::request<bhttp::span_body<const char>> req_;  // the body points into request_
  // A streamed body: its header's serializer, and how many body bytes were written.
  std::optional<bhttp::request_serializer<bhttp::span_body<const char>>> header_serializer_;
  std::size_t body_sent_ = 0;
  std::shared_ptr<CallImpl> waiting_self_;  // set while waiting for streamed body bytes
  tcp::resolver resolver_;
  net::steady_timer resolve_timer_;
  net::steady_timer wait_timer_;  // bounds the wait for a free connection
  net::steady_timer body_timer_;  // bounds a wait for more streamed body bytes by the deadline
  std::unique_ptr<Connection> conn_;
  bool holds_slot_ = false;  // conn_ (or the one being opened) counts against the host's limit
  bool waiting_ = false;     // queued for a free connection as waiter_id_
  std::uint64_t waiter_id_ = 0;
  std::optional<bhttp::response_parser<bhttp::buffer_body>> parser_;
  std::string piece_;
  std::uint64_t reader_waits_ = 0;  // paced pieces handed over so far (a resume names its own)
  std::optional<Clock::time_point> deadline_;
  Clock::time_point phase_expiry_;
  Phase phase_ = Phase::kResolve;
  bool done_ = false;
  bool resolving_ = false;
  bool resolve_timed_out_ = false;
  std::atomic<bool> finished_{false};
  std::atomic<bool> cancel_requested_{false};
};

// ---------------------------------------------------------------------------------------------

class BeastHttpClient final : public HttpClient {
 public:
  BeastHttpClient(std::shared_ptr<Runtime> runtime, int threads) : rt_(std::move(runtime)) {
    threads_.reserve(threads);
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([rt = rt_] {
        // A handler that throws past the call's own guard (Deliver) must not end the process:
        // log and keep serving (io_context::run may be called again after an exception).
        while (true) {
          try {
            rt->ioc.run();
            return;
          } catch (const std::exception& e) {
            LogError("HTTP I/O thread: handler threw (%s); continuing", e.what());
          } catch (...) {
            LogError("HTTP I/O thread: handler threw; continuing");
          }
        }
      });
    }
  }

  ~BeastHttpClient() override {
    std::vector<std::shared_ptr<CallImpl>> calls;
    {
      absl::MutexLock lock(&rt_->mu);
      rt_->shutting_down = true;
      for (auto& [ptr, weak] : rt_->live) {
        if (auto call = weak.lock()) calls.push_back(std::move(call));
      }
    }
    for (auto& call : calls) call->Cancel();
    calls.clear();
    // The threads finish what is queued (the cancellations and what they abort) and return.
    rt_->work.reset();
    const std::thread::id self = std::this_thread::get_id();
    bool on_io_thread = false;
    for (const auto& t : threads_) on_io_thread = on_io_thread || t.get_id() == self;
    for (auto& t : threads_) {
      // Destroyed from one of its own callbacks: the threads own the runtime and finish alone.
      if (on_io_thread) {
        t.detach();
      } else {
        t.join();
      }
    }
    // Callers may keep Call objects (and so the runtime) alive: don't keep sockets open for them.
    if (!on_io_thread) rt_->pool.Clear();
  }

  std::shared_ptr<Call> Stream(Request request, StreamHandler handler) override {
    auto call = std::make_shared<CallImpl>(rt_, std::move(request), std::move(handler));
    call->Start();
    return call;
  }

  std::shared_ptr<Call> Fetch(Request request,
                              absl::AnyInvocable<void(absl::StatusOr<Response>)> done) override {
    struct State {
      Response response;
      absl::AnyInvocable<void(absl::StatusOr<Response>)> done;
      std::size_t max_body = 0;
    };
    auto state = std::make_shared<State>();
    state->done = std::move(done);
    state->max_body = rt_->options.max_response_body_bytes;
    StreamHandler handler;
    handler.on_head = [state](const ResponseHead& head) {
      state->response.head = head;
      std::uint64_t length = 0;
      const std::string_view value = FindHeader(head.headers, "content-length");
      if (absl::SimpleAtoi(absl::string_view(value.data(), value.size()), &length)) {
        state->response.body.reserve(std::min<std::uint64_t>(length, state->max_body));
      }
    };
    handler.on_body = [state](std::string_view piece) {
      state->response.body.append(piece.data(), piece.size());
    };
    handler.on_done = [state](absl::Status status) {
      auto done = std::move(state->done);
      if (!done) return;
      if (status.ok()) {
        done(std::move(state->response));
      } else {
        done(std::move(status));
      }
    };
    return Stream(std::move(request), std::move(handler));
  }

 private:
  std::shared_ptr<Runtime> rt_;
  std::vector<std::thread> threads_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<HttpClient>> MakeHttpClient(HttpClientOptions options) {
  const int threads = std::max(1, options.io_threads);
  if (options.default_phase_timeout <= std::chrono::milliseconds::zero()) {
    return absl::InvalidArgumentError("default_phase_timeout must be positive");
  }
  auto runtime = std::make_shared<Runtime>(std::move(options));
  ssl::context& tls = runtime->tls_context;
  if (SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION) != 1) {
    return absl::InternalError("cannot require TLS 1.2 or newer");
  }
  error_code ec;
  tls.set_options(ssl::context::default_workarounds | ssl::context::no_compression, ec);
  if (!ec) tls.set_verify_mode(ssl::verify_peer, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot configure TLS: ", ec.message()));
  if (!runtime->options.ca_file.empty()) {
    tls.load_verify_file(runtime->options.ca_file, ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot load CA file ", runtime->options.ca_file, ": ", ec.message()));
    }
  } else {
    tls.set_default_verify_paths(ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot load the system CA store: ", ec.message()));
    }
  }
  return std::shared_ptr<HttpClient>(std::make_shared<BeastHttpClient>(std::move(runtime), threads));
}

}  // namespace vision_gateway::http
