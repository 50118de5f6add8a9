// Internal to service/http (shows Boost types; never include it outside service/http): what an
// HTTP exchange (http_exchange.cc) fails with. Its phases, and the row of the error table
// (WithOutcome, error_reasons.h) a timeout or an Asio/Beast/OpenSSL error in a phase maps to. The
// messages name the host for the operator's log, never a header value or the URL's query; the
// table decides what a caller sees.
#ifndef VISION_GATEWAY_SERVICE_HTTP_EXCHANGE_STATUS_INTERNAL_H_
#define VISION_GATEWAY_SERVICE_HTTP_EXCHANGE_STATUS_INTERNAL_H_

#include <chrono>
#include <cstddef>

#include <boost/system/error_code.hpp>

#include "absl/status/status.h"
#include "service/http/tls_context_internal.h"
#include "service/http/url_target.h"

namespace vision_gateway::http::internal {

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

// "reading the response header from", ...: followed by the authority in messages.
const char* PhaseName(Phase phase);

// Where an exchange failed, as the mapping needs it.
struct Failure {
  Phase phase;
  const Target& target;
  // The caller's deadline had passed (else a timeout is the per-phase default_phase_timeout).
  bool deadline_passed = false;
  std::chrono::milliseconds default_phase_timeout{0};
  // A byte of a response was read on this connection: sending the request again could bring a
  // second answer (the retry decorator's policy decides; UPSTREAM_CONNECTION_LOST tells it).
  bool response_started = false;
  std::size_t max_response_body_bytes = 0;
  std::size_t max_response_header_bytes = 0;
  TlsStream* tls = nullptr;  // the connection's TLS stream, if any (handshake failures)
};

// The phase's time ran out: DEADLINE_EXCEEDED, UPSTREAM_TIMEOUT.
absl::Status TimeoutStatus(const Failure& failure);

// `ec` ended the phase (not a timeout: the exchange checks its expiry first).
absl::Status ErrorStatus(const Failure& failure, const boost::system::error_code& ec);

}  // namespace vision_gateway::http::internal

#endif  // VISION_GATEWAY_SERVICE_HTTP_EXCHANGE_STATUS_INTERNAL_H_
