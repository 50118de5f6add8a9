// Asynchronous HTTP/1.1 client over Boost.Beast + OpenSSL. This header shows no Boost types:
// everything Beast lives in the .cc files and *_internal.h headers of service/http.
//
// Threads: the client owns an io_context run by `io_threads` threads; every callback of one call
// runs on that call's strand, never concurrently with another callback of the same call. Callbacks
// must not block.
#ifndef VISION_GATEWAY_SERVICE_HTTP_HTTP_CLIENT_H_
#define VISION_GATEWAY_SERVICE_HTTP_HTTP_CLIENT_H_

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/common/growing_buffer.h"

namespace vision_gateway::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

// Case-insensitive header lookup; empty when absent.
std::string_view FindHeader(const Headers& headers, std::string_view name);

struct HttpClientOptions {
  int io_threads = 2;
  // PEM file of trusted CAs. Empty: the system trust store.
  std::string ca_file;
  // Connections open to one host:port at once (idle, in use and being opened; 0: no limit),
  // which bounds the file descriptors the client holds. A request that finds every one busy waits
  // for one, first come first served, for as long as its deadline allows (without a deadline:
  // default_phase_timeout); then it fails DEADLINE_EXCEEDED (UPSTREAM_TIMEOUT). A connection that
  // becomes free goes to the oldest waiter: a kept-alive one is handed over, a closed one lets the
  // waiter open a new one.
  std::size_t max_connections_per_host = 256;
  // Requests waiting for a connection to one host:port. Beyond it a request fails at once with
  // RESOURCE_EXHAUSTED (SERVER_OVERLOADED) and a RetryInfo: the queue never grows without bound.
  std::size_t max_waiting_requests_per_host = 1024;
  // Idle keep-alive connections kept per host:port.
  std::size_t max_idle_connections_per_host = 256;
  // An idle pooled connection older than this is closed instead of reused.
  std::chrono::milliseconds idle_timeout{30000};
  // Bound for each phase when the request has no deadline (a request with a deadline is bounded
  // by it alone, however far away it is).
  std::chrono::milliseconds default_phase_timeout{60000};
  // Largest response header block and body accepted.
  std::size_t max_response_header_bytes = 64 * 1024;
  std::size_t max_response_body_bytes = 64 * 1024 * 1024;
};

struct Request {
  std::string method = "GET";
  // Absolute URL: https://host[:port]/path?query, or http:// (loopback hosts only).
  std::string url;
  Headers headers;
  std::string body;
  // Instead of `body`: bytes shared with the caller, sent from `streamed_body_offset` to the end
  // of the buffer without a copy (an upload chunk the caller keeps to resume from). The buffer
  // may still be filling: Content-Length is its full size, and the bytes are sent as they are
  // appended. If it is abandoned before it is complete, the call fails CANCELLED. A wait for
  // more bytes is bounded by `deadline` alone (without one, the producer must complete or
  // abandon the buffer, or the caller cancel the call). The call holds its reference until the
  // whole body was written (or the call ended). With it set, `body` must be empty.
  std::shared_ptr<GrowingBuffer> streamed_body;
  std::size_t streamed_body_offset = 0;
  // Bounds every phase (resolve, connect, handshake, write, read) of this request.
  absl::Time deadline = absl::InfiniteFuture();
};

struct ResponseHead {
  int status = 0;
  Headers headers;
};

struct Response {
  ResponseHead head;
  std::string body;
};

// Callbacks of a streaming call. on_head runs once when the status line and headers arrive, then
// on_body for each piece of body as it is read (any size, split anywhere), then on_done exactly
// once. on_done alone runs when the call fails before a response head (with a non-OK status).
struct StreamHandler {
  absl::AnyInvocable<void(const ResponseHead&)> on_head;
  absl::AnyInvocable<void(std::string_view)> on_body;
  // Instead of on_body, a body paced by its reader: each piece (at most 64 KiB) comes with
  // `resume`, which the handler runs (once, from any thread, possibly inside the callback) when it
  // wants the next piece. Until then nothing more is read from the connection, so a slow reader
  // holds one piece plus what the socket buffers; TCP flow control holds back the sender. Such a
  // body is not bounded by max_response_body_bytes (nothing is buffered) but by 4 GiB. on_done
  // follows the last piece once that piece's `resume` ran. The wait for `resume` is bounded by the
  // request's deadline (DEADLINE_EXCEEDED, UPSTREAM_TIMEOUT) and ended by Cancel(); a handler that
  // drops `resume` without running it must cancel the call.
  absl::AnyInvocable<void(std::string_view, absl::AnyInvocable<void()> resume)> on_paced_body;
  // OK: the body ended as framed (Content-Length or chunked). Errors carry an outcome tag
  // (GetOutcome, service/common/status_details.h) naming their row of the error table:
  //   DEADLINE_EXCEEDED   UPSTREAM_TIMEOUT: the deadline (or, without one, a phase timeout) passed,
  //                       waiting for a free connection included
  //   CANCELLED           (no tag) Cancel() was called
  //   UNAVAILABLE         UPSTREAM_UNREACHABLE: resolve/connect failed, or the connection failed
  //                       before any response byte (the request may not have been processed);
  //                       UPSTREAM_CONNECTION_LOST: it failed after response bytes arrived;
  //                       UPSTREAM_BAD_RESPONSE: malformed HTTP;
  //                       UPSTREAM_TLS: TLS handshake or certificate verification failed
  //   RESOURCE_EXHAUSTED  UPSTREAM_RESPONSE_TOO_LARGE: header or body bigger than the limit;
  //                       SERVER_OVERLOADED (+ RetryInfo): max_waiting_requests_per_host
  //                       requests already wait for a connection to this host
  //   INVALID_ARGUMENT    (no tag) bad URL, http:// to a non-loopback host
  // A failure that came after the whole request was written also carries the wire fact
  // RequestWritten (below); CANCELLED never does.
  // A request is sent once: nothing here re-sends it (retries are the Gemini layer's policy).
  absl::AnyInvocable<void(absl::Status)> on_done;
};

// A wire fact on a failed call's status: the whole request (head and body) had been written when
// the call failed, before a complete response. The server may have received the request and
// acted on it (Gemini may be generating, and billing, an answer nobody will read); whether to
// send it again is the caller's policy (the idempotency rule, gemini/async_retry_loop.h). A
// failure without it left part of the request unsent (or never connected). Travels as a private
// payload (never shown to a gateway caller, like the outcome tag of status_details.h).
inline constexpr char kRequestWrittenPayloadUrl[] = "vision-gateway.internal/request-written";
absl::Status WithRequestWritten(absl::Status status);
bool RequestWritten(const absl::Status& status);

// A call in flight. Cancel() is thread-safe, idempotent and harmless after completion; it closes
// the connection (it is not returned to the pool) and on_done gets CANCELLED if it has not run.
class Call {
 public:
  virtual ~Call() = default;
  virtual void Cancel() = 0;
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;

  // Starts a request whose body is delivered in pieces as it arrives.
  virtual std::shared_ptr<Call> Stream(Request request, StreamHandler handler) = 0;

  // Starts a request and delivers the whole response (any HTTP status) or a transport error.
  virtual std::shared_ptr<Call> Fetch(Request request,
                                      absl::AnyInvocable<void(absl::StatusOr<Response>)> done) = 0;
};

// Starts the I/O threads. Fails if the CA file cannot be loaded.
absl::StatusOr<std::shared_ptr<HttpClient>> MakeHttpClient(HttpClientOptions options);

}  // namespace vision_gateway::http

#endif  // VISION_GATEWAY_SERVICE_HTTP_HTTP_CLIENT_H_
