// The per-request state machine of HttpClient (http_exchange.h). One CallImpl per request, owned
// by the handlers it has in flight (shared_from_this) and by the caller's shared_ptr<Call>. Every
// step of a call runs on the call's strand, so a call's state needs no lock. Connections carry no
// executor affinity: whichever call holds one binds its handlers to its own strand.
//
// One timer per call bounds every phase (timer_, ArmTimer): each phase only moves phase_expiry_,
// and the timer is re-armed when it fires early or must fire earlier, so a streamed answer's reads
// cost no timer operations (a Beast tcp_stream re-arms one around every read and write).
//
// Header values are never logged or put into error messages: they carry the API key. Neither is
// the URL's query string (it may carry ?key=).
#include "service/http/http_exchange.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "service/common/error_reasons.h"
#include "service/common/log.h"
#include "service/common/status_details.h"
#include "service/http/connection_pool_internal.h"
#include "service/http/exchange_status_internal.h"
#include "service/http/runtime_internal.h"
#include "service/http/tls_context_internal.h"
#include "service/http/url_target.h"

namespace vision_gateway::http::internal {
namespace {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using boost::system::error_code;

constexpr std::string_view kUserAgent = "vision-gateway/0.1";
// Size of the buffer body pieces are read into (and so the largest on_body piece). Beast reads
// at most the connection's free buffer room (kReadBufferBytes) at a time, so a larger piece would
// never fill: it would only cost memory for every stream reading a body.
constexpr std::size_t kReadPieceBytes = kReadBufferBytes;
// A body starts with pieces (and a connection read buffer) of this size: a stream of small SSE
// events never needs more. The first read that fills one grows both to kReadPieceBytes.
constexpr std::size_t kFirstReadPieceBytes = 4 * 1024;
// Largest paced body (StreamHandler::on_paced_body): above the Files API's 2 GB per file.
constexpr std::uint64_t kMaxPacedBodyBytes = std::uint64_t{4} << 30;
// Deadlines further away than this are treated as "no deadline" (avoids clock overflow).
constexpr absl::Duration kFarFuture = absl::Hours(24 * 365);

class CallImpl final : public Call, public std::enable_shared_from_this<CallImpl> {
 public:
  CallImpl(std::shared_ptr<Runtime> runtime, Request request, StreamHandler handler)
      : rt_(std::move(runtime)),
        strand_(net::make_strand(rt_->ioc)),
        request_(std::move(request)),
        handler_(std::move(handler)),
        timer_(strand_) {}

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
  void StartPhase(Phase phase) {
    phase_ = phase;
    phase_expiry_ = deadline_ ? *deadline_ : Clock::now() + rt_->options.default_phase_timeout;
    ArmTimer();
  }

  // A wait for the request's producer or the response's reader: bounded by the deadline alone.
  void StartWaitPhase(Phase phase) {
    phase_ = phase;
    phase_expiry_ = deadline_ ? *deadline_ : Clock::time_point::max();
    ArmTimer();
  }

  // Makes the timer fire no later than phase_expiry_. A timer already set to fire earlier is left
  // alone: when it fires before the phase's expiry, OnTimer sets it again (lazily, so a phase that
  // moves the expiry further costs nothing).
  void ArmTimer() {
    if (phase_expiry_ == Clock::time_point::max()) return;
    if (timer_armed_ && armed_expiry_ <= phase_expiry_) return;
    timer_.expires_at(phase_expiry_);  // a pending wait ends aborted; its handler is stale
    armed_expiry_ = phase_expiry_;
    timer_armed_ = true;
    const std::uint64_t wait = ++timer_waits_;
    timer_.async_wait(OnStrand([self = shared_from_this(), wait](error_code ec) {
      self->OnTimer(wait, ec);
    }));
  }

  void OnTimer(std::uint64_t wait, error_code ec) {
    if (wait != timer_waits_) return;  // replaced by a later ArmTimer
    timer_armed_ = false;
    if (ec || done_) return;
    if (Clock::now() < phase_expiry_) {  // the phase moved its expiry since
      ArmTimer();
      return;
    }
    // Whatever the phase was doing ends with the call: Complete closes the connection (a pending
    // read, write, connect or handshake ends aborted and sees done_), cancels the resolver and
    // leaves the connection queue (a slot granted meanwhile goes back in OnGranted).
    Complete(TimeoutStatus());
  }

  void Begin() {
    if (Abandoned()) return;
    auto target = ParseTarget(request_.url);
    std::string().swap(request_.url);  // parsed: target_ holds what the call needs
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
    std::string().swap(target_.target);  // copied into req_, which lets it go once written
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
    is_head_ = verb == bhttp::verb::head;
    Headers().swap(request_.headers);  // copied into req_: the originals' memory goes now
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
    StartPhase(Phase::kWaitConnection);
  }

  // A slot freed by another call reached this one: a kept-alive connection, or leave to open one.
  void OnGranted(std::unique_ptr<Connection> conn) {
    waiting_ = false;
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
    StartPhase(Phase::kResolve);
    // Only a call that opens a connection resolves: the resolver is made for it.
    if (!resolver_) resolver_ = std::make_unique<tcp::resolver>(strand_);
    resolver_->async_resolve(
        target_.host, std::to_string(target_.port), tcp::resolver::numeric_service,
        OnStrand([self = shared_from_this()](error_code ec, tcp::resolver::results_type results) {
          self->OnResolve(ec, std::move(results));
        }));
  }

  void OnResolve(error_code ec, tcp::resolver::results_type results) {
    if (Abandoned()) return;
    if (ec) {
      Fail(ec);
      return;
    }
    conn_ = std::make_unique<Connection>(rt_->ioc.get_executor(),
                                         target_.tls ? &rt_->tls_context : nullptr,
                                         target_.pool_key);
    StartPhase(Phase::kConnect);
    net::async_connect(
        conn_->lowest(), results,
        OnStrand([self = shared_from_this()](error_code ec, const tcp::endpoint&) {
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
    conn_->lowest().set_option(tcp::no_delay(true), ignored);
    if (conn_->tls) {
      Handshake();
    } else {
      Write();
    }
  }

  void Handshake() {
    TlsStream& stream = *conn_->tls;
    if (absl::Status s = PrepareTlsStream(stream, target_); !s.ok()) {
      Complete(std::move(s));
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
    if (request_.streamed_body != nullptr && request_.streamed_body->complete()) {
      // All there (an encoded request the retry loop shares between attempts): header and body
      // go out as one write from where the bytes lie (they never move while the buffer lives,
      // and request_ holds it until OnWrite).
      const std::string_view bytes =
          request_.streamed_body->View().substr(request_.streamed_body_offset);
      req_.body() = bhttp::span_body<const char>::value_type(bytes.data(), bytes.size());
    } else if (request_.streamed_body != nullptr) {
      // The header alone; then the body bytes as they arrive (WriteBody).
      header_serializer_ = std::make_unique<HeaderSerializer>(req_);
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
    StartWaitPhase(Phase::kWaitBody);
    // No I/O is pending to keep the call alive while it waits: it holds itself until the wake
    // or Complete (the buffer holds only a weak reference, so a buffer that outlives an ended
    // call keeps nothing of it).
    waiting_self_ = shared_from_this();
    request_.streamed_body->WhenMore(at, [weak = weak_from_this()] {
      if (auto self = weak.lock()) {
        net::post(self->strand_, [self] {
          self->waiting_self_.reset();
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
    header_serializer_.reset();
    req_ = {};  // the request head too (its fields hold the API key): nothing reads it again
    request_.body = std::string();
    request_.streamed_body.reset();
    ReadHeader();
  }

  void ReadHeader() {
    StartPhase(Phase::kReadHeader);
    if (!conn_->tls && conn_->buffer.size() == 0) {
      // Most of a slow stream's life is this wait: it holds no read buffer and no parser until
      // the answer is there (a readable socket; EOF and errors too, which the read then reports).
      // Not over TLS: the TLS stream may hold bytes read from the socket already.
      conn_->plain->async_wait(tcp::socket::wait_read,
                               OnStrand([self = shared_from_this()](error_code ec) {
                                 if (self->Abandoned()) return;
                                 if (ec) {
                                   self->Fail(ec);
                                   return;
                                 }
                                 self->ReadHeaderBytes();
                               }));
      return;
    }
    ReadHeaderBytes();
  }

  void ReadHeaderBytes() {
    parser_ = std::make_unique<Parser>();
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(rt_->options.max_response_header_bytes, UINT32_MAX)));
    // A paced body is held one piece at a time, so max_response_body_bytes (a bound on what is
    // buffered) does not apply; kMaxPacedBodyBytes bounds how long such a reader may read.
    parser_->body_limit(handler_.on_paced_body
                            ? kMaxPacedBodyBytes
                            : static_cast<std::uint64_t>(rt_->options.max_response_body_bytes));
    if (is_head_) parser_->skip(true);
    // A head is small: read it with kHeadBufferBytes, not the body's read buffer (ReadBody).
    if (conn_->buffer.capacity() < kHeadBufferBytes) conn_->buffer.reserve(kHeadBufferBytes);
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
    if (piece_.size() < kFirstReadPieceBytes) piece_.resize(kFirstReadPieceBytes);
    if (grow_piece_) {
      grow_piece_ = false;
      piece_.resize(kReadPieceBytes);
    }
    const std::size_t buffer_bytes = piece_.size() < kReadPieceBytes ? piece_.size()
                                                                     : kReadBufferBytes;
    if (conn_->buffer.capacity() < buffer_bytes) conn_->buffer.reserve(buffer_bytes);
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
    // A full piece: the body comes faster than small pieces take it (not an SSE trickle).
    if (n == piece_.size() && piece_.size() < kReadPieceBytes) grow_piece_ = true;
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
    StartWaitPhase(Phase::kWaitReader);
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
          self->ReadBody();
        });
      }
    };
    Deliver([&] { handler_.on_paced_body(std::string_view(piece_.data(), n), std::move(resume)); });
  }

  void Succeed() {
    if (parser_->keep_alive() && conn_->buffer.size() == 0) {
      holds_slot_ = false;  // the slot stays with the connection
      rt_->pool.Put(std::move(conn_));
    }
    Complete(absl::OkStatus());
  }

  // Where this call is, for the error table (exchange_status_internal.h).
  Failure Where() const {
    return Failure{
        .phase = phase_,
        .target = target_,
        .deadline_passed = deadline_ && Clock::now() >= *deadline_,
        .default_phase_timeout = rt_->options.default_phase_timeout,
        // Connecting, writing, or waiting for the answer's first byte (no parser yet, or one that
        // has read nothing) is before any response: the request may be sent again.
        .response_started = phase_ == Phase::kReadBody || phase_ == Phase::kWaitReader ||
                            (phase_ == Phase::kReadHeader && parser_ && parser_->got_some()),
        .max_response_body_bytes = rt_->options.max_response_body_bytes,
        .max_response_header_bytes = rt_->options.max_response_header_bytes,
        .tls = conn_ ? conn_->tls.get() : nullptr,
    };
  }

  absl::Status TimeoutStatus() const { return internal::TimeoutStatus(Where()); }

  absl::Status ErrorStatus(error_code ec) const {
    if (Clock::now() >= phase_expiry_) return TimeoutStatus();
    return internal::ErrorStatus(Where(), ec);
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
    timer_.cancel();
    if (resolver_) resolver_->cancel();
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
  bool is_head_ = false;  // a HEAD request: its response has no body
  // A streamed body: its header's serializer (~400 bytes: made only for such a body), and how many
  // body bytes were written.
  using HeaderSerializer = bhttp::request_serializer<bhttp::span_body<const char>>;
  std::unique_ptr<HeaderSerializer> header_serializer_;
  std::size_t body_sent_ = 0;
  std::shared_ptr<CallImpl> waiting_self_;  // set while waiting for streamed body bytes
  std::unique_ptr<tcp::resolver> resolver_;  // made by the first Resolve
  // Bounds the current phase (ArmTimer): set to armed_expiry_ while timer_armed_; timer_waits_
  // names the latest wait, so that a replaced wait's handler knows it is stale.
  net::steady_timer timer_;
  bool timer_armed_ = false;
  Clock::time_point armed_expiry_;
  std::uint64_t timer_waits_ = 0;
  std::unique_ptr<Connection> conn_;
  bool holds_slot_ = false;  // conn_ (or the one being opened) counts against the host's limit
  bool waiting_ = false;     // queued for a free connection as waiter_id_
  std::uint64_t waiter_id_ = 0;
  // Made when the answer's first bytes are there (~270 bytes a waiting stream need not hold).
  using Parser = bhttp::response_parser<bhttp::buffer_body>;
  std::unique_ptr<Parser> parser_;
  std::string piece_;
  bool grow_piece_ = false;  // the last read filled piece_: the next read gets kReadPieceBytes
  std::uint64_t reader_waits_ = 0;  // paced pieces handed over so far (a resume names its own)
  std::optional<Clock::time_point> deadline_;
  Clock::time_point phase_expiry_;
  Phase phase_ = Phase::kResolve;
  bool done_ = false;
  std::atomic<bool> finished_{false};
  std::atomic<bool> cancel_requested_{false};
};

}  // namespace

std::shared_ptr<Call> StartExchange(std::shared_ptr<Runtime> runtime, Request request,
                                    StreamHandler handler) {
  auto call = std::make_shared<CallImpl>(std::move(runtime), std::move(request), std::move(handler));
  call->Start();
  return call;
}

}  // namespace vision_gateway::http::internal
